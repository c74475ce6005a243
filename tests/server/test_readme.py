"""The README's configuration example is valid: a newcomer can start from it as it is."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from watchkeeper.alerting._config import load_alerting_config
from watchkeeper.config import load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_example_loads(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README has no yaml example"
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(block.group(1))
    env = {"PD_ROUTING_KEY": "R0UT1NGKEY", "SLACK_WEBHOOK_URL": "https://hooks.example/x"}
    config = load_config(path, env=env)
    alerting = load_alerting_config(yaml.safe_load(block.group(1))["alerting"])
    assert config.server.port == 4318 and config.prices[0].model == "my-finetune"
    assert "billing-agent-timeouts" in {r.id for r in alerting.rules}
    assert [s.id for s in alerting.slos] == ["chat-latency"]
