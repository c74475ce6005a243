// A Node.js app's logs through the OpenTelemetry JS SDK's OTLP/HTTP protobuf exporter (npm):
// records of every severity, a structured body, typed attributes, one inside a span.
// Usage: node send_logs.mjs URL RUN_ID   (tests/logs/test_node.py reads them back)
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";

const [url, runId] = process.argv.slice(2);
const exporter = new OTLPLogExporter({ url: `${url}/v1/logs` });
const provider = new LoggerProvider({
  resource: resourceFromAttributes({
    "service.name": "node-shop",
    "deployment.environment.name": "test",
  }),
  processors: [new BatchLogRecordProcessor({ exporter })],
});
const logger = provider.getLogger("shop.checkout", "1.2.3");

const severities = [
  [SeverityNumber.DEBUG, "DEBUG"],
  [SeverityNumber.INFO, "INFO"],
  [SeverityNumber.WARN, "WARN"],
  [SeverityNumber.ERROR, "ERROR"],
  [SeverityNumber.FATAL, "FATAL"],
];
for (const [severityNumber, severityText] of severities) {
  logger.emit({
    severityNumber,
    severityText,
    body: `${severityText.toLowerCase()} from node ${runId}`,
    attributes: { "run.id": runId, "cart.items": 3, "cart.total": 41.5, "cart.paid": false },
  });
}
logger.emit({
  severityNumber: SeverityNumber.INFO,
  severityText: "INFO",
  body: { event: "order placed", order: { id: "A-17", lines: [1, 2] } },
  attributes: { "run.id": runId, tags: ["new", "mobile"] },
});
const spanContext = {
  traceId: "5b8efff798038103d269b633813fc60c",
  spanId: "eee19b7ec3c1b174",
  traceFlags: TraceFlags.SAMPLED,
};
logger.emit({
  severityNumber: SeverityNumber.ERROR,
  severityText: "ERROR",
  body: `payment failed ${runId}`,
  attributes: { "run.id": runId },
  context: trace.setSpanContext(context.active(), spanContext),
});
await provider.shutdown(); // sends what is queued
