import type { MetricValueWithName, Registry } from 'prom-client';

/** The current value of a counter or gauge series, or a histogram's `_count` or `_sum`; 0 when it has none yet. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name) ?? registry.getSingleMetric(name.replace(/_(count|sum)$/, ''));
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find(
    (value: MetricValueWithName<string>) => (value.metricName ?? name) === name && Object.entries(labels).every(([label, expected]) => String(value.labels[label]) === expected),
  );
  return match?.value ?? 0;
}
