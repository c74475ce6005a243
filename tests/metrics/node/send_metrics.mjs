// A Node.js app's metrics through the OpenTelemetry JS SDK's OTLP/HTTP protobuf exporter (npm):
// a counter, an up-down counter, a histogram and an observable gauge, exported ROUNDS times.
// Usage: node send_metrics.mjs URL ROUNDS   (tests/metrics/test_node.py queries them back)
// OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta makes the exporter send deltas.
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";

const [url, rounds] = [process.argv[2], Number(process.argv[3])];
const reader = new PeriodicExportingMetricReader({
  exporter: new OTLPMetricExporter({ url: `${url}/v1/metrics` }),
  exportIntervalMillis: 3_600_000, // exports happen when this script flushes
});
const provider = new MeterProvider({
  resource: resourceFromAttributes({ "service.name": "node-shop" }),
  readers: [reader],
});
const meter = provider.getMeter("shop", "1.0.0");
const orders = meter.createCounter("shop.orders", { description: "orders placed" });
const queue = meter.createUpDownCounter("shop.queue.depth");
const duration = meter.createHistogram("shop.checkout.duration", {
  unit: "s",
  advice: { explicitBucketBoundaries: [0.1, 1] },
});
let temperature = 20;
meter
  .createObservableGauge("shop.temperature")
  .addCallback((result) => result.observe(temperature, { room: "cold" }));

for (let round = 1; round <= rounds; round++) {
  temperature = 20 + round; // read at each export; the last is 20 + ROUNDS
  orders.add(2, { region: "eu" });
  orders.add(1, { region: "us" });
  queue.add(5, { queue: "mail" });
  queue.add(-2, { queue: "mail" });
  duration.record(0.05, { route: "/pay" });
  duration.record(0.5, { route: "/pay" });
  await reader.forceFlush();
}
await provider.shutdown();
