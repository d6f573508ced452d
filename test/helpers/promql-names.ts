/**
 * The metric names a PromQL expression reads, found well enough for checking dashboards and rules against a
 * /metrics page: strings, label matchers, ranges, grouping clauses and Grafana variables are dropped, then
 * every identifier that is not a function call or a keyword is a metric name.
 */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:])(?!\s*\()/g)) if (!KEYWORDS.has(m[1]!)) names.add(m[1]!);
  return [...names];
}

/** The metric names of a Grafana template variable query: `label_values(expr, label)`, `query_result(expr)`, or PromQL. */
export function templateQueryNames(query: string): string[] {
  const lv = /^\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*$/s.exec(query);
  if (lv) return metricNames(lv[1]!);
  if (/^\s*label_values\(\s*[a-zA-Z_]\w*\s*\)\s*$/.test(query)) return [];
  const qr = /^\s*query_result\((.*)\)\s*$/s.exec(query);
  return metricNames(qr ? qr[1]! : query);
}

/** Family names from the `# TYPE` lines of a Prometheus text page, with their types. */
export function exposedFamilies(page: string): Map<string, string> {
  return new Map([...page.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** Whether `name` is a series of one of the families: histograms and summaries count with their suffixes. */
export function isExposed(name: string, families: ReadonlyMap<string, string>): boolean {
  if (families.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!m) return false;
  const type = families.get(m[1]!);
  return type === 'histogram' || (type === 'summary' && m[2] !== 'bucket');
}
