/**
 * An Init-Data document (version 0.1.0) as Kata and CoCo write it: each `data` entry (`aa.toml`,
 * `cdh.toml`, `policy.rego`, …) as a TOML multi-line literal string. The texts must not hold `'''`.
 */
export function initDataToml(data: Record<string, string>, algorithm = 'sha384'): string {
  const entries = Object.entries(data).map(([name, text]) => {
    if (text.includes("'''")) throw new TypeError(`initDataToml: ${name} holds '''`)
    return `${JSON.stringify(name)} = '''\n${text}'''\n`
  })
  return [`algorithm = "${algorithm}"`, 'version = "0.1.0"', '', '[data]', ...entries].join('\n')
}
