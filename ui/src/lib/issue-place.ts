/** Where a data source's problem is, in words: "plant.csv, line 12", "plant.csv", or nothing. */
import type { HealthIssue } from './contract';

export function issuePlace(issue: HealthIssue): string | null {
  const name = issue.file ? fileName(issue.file) : null;
  if (name && issue.line != null) {
    return `${name}, line ${issue.line}`;
  }
  if (name) {
    return name;
  }
  return issue.line != null ? `Line ${issue.line}` : null;
}

/** The last part of a path, whichever separator the connector's machine uses. */
function fileName(path: string): string {
  const parts = path.split(/[\\/]/).filter((part) => part !== '');
  return parts[parts.length - 1] ?? path;
}
