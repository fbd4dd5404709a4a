// The forge port: the few GitHub operations the pipeline needs to report on a pull request
// (conversation comments, check runs, labels, a pull request's head). One Octokit adapter talks
// to GitHub; one local adapter writes the same records under .skintwin/forge/ for a laptop.

/** A conversation comment on an issue or pull request. */
export interface ForgeComment {
  id: number;
  body: string;
  /** Login of the comment's author, e.g. `github-actions[bot]`. */
  author: string;
  /** Where a person reads it (absent on the local forge). */
  url?: string;
}

export type CheckConclusion = 'success' | 'failure' | 'neutral';

/** A completed check run as the forge stores it. */
export interface CheckRunInput {
  /** e.g. `evaluate / skin-type`. */
  name: string;
  headSha: string;
  conclusion: CheckConclusion;
  title: string;
  /** Markdown, at most CHECK_OUTPUT_LIMIT characters. */
  summary: string;
  /** Markdown, at most CHECK_OUTPUT_LIMIT characters. */
  text?: string;
  detailsUrl?: string;
}

export interface ForgeCheckRun {
  id: number;
  name: string;
  headSha: string;
  status: string;
  conclusion: string | null;
  title: string | null;
  summary: string | null;
  text: string | null;
  url?: string;
}

/** GitHub's limits: a comment body of 65536 characters, a check run summary or text of 65535. */
export const COMMENT_LIMIT = 65_536;
export const CHECK_OUTPUT_LIMIT = 65_535;

export interface Forge {
  /** `github` or `local`, for messages. */
  readonly name: string;
  /**
   * Login the forge posts as (`github-actions[bot]` with a workflow's GITHUB_TOKEN): only its own
   * comments are ever edited, never a person's comment that happens to quote a marker.
   */
  readonly author: string;
  /** Every comment of issue/pull request `issue`, oldest first, page after page as they are read. */
  comments(issue: number): AsyncIterable<ForgeComment>;
  createComment(issue: number, body: string): Promise<ForgeComment>;
  updateComment(id: number, body: string): Promise<ForgeComment>;
  /** The latest check run named `name` on commit `headSha`, or null. */
  findCheckRun(headSha: string, name: string): Promise<ForgeCheckRun | null>;
  createCheckRun(run: CheckRunInput): Promise<ForgeCheckRun>;
  updateCheckRun(id: number, run: CheckRunInput): Promise<ForgeCheckRun>;
  /** Remove label `name` from issue/pull request `issue`; false when it did not carry it. */
  removeLabel(issue: number, name: string): Promise<boolean>;
  /** The head commit of pull request `pr`, or null when there is no such pull request. */
  pullRequestHead(pr: number): Promise<string | null>;
}

/** Cut `text` to `limit` characters, ending with `note` so a reader knows something is missing. */
export function truncate(text: string, limit: number, note: string): string {
  if (text.length <= limit) return text;
  const tail = `\n\n${note}\n`;
  return text.slice(0, Math.max(0, limit - tail.length)) + tail;
}
