// A small, strict reader for Dockerfiles (the subset of the Dockerfile
// reference that matters for checking one): parser directives, comments,
// line continuations (with comment lines inside them dropped, as BuildKit
// does), instructions with their exec-form (JSON array) or shell-form
// arguments, global ARG substitution in FROM, and stages.
// Used by test/packaging-dockerfile.test.ts: no Docker engine runs where the
// tests do, so the Dockerfile is checked by reading it.

export class DockerfileError extends Error {
  readonly code: 'syntax' | 'stage';
  constructor(code: 'syntax' | 'stage', message: string) {
    super(message);
    this.name = 'DockerfileError';
    this.code = code;
  }
}

export interface Instruction {
  /** Upper-case keyword (FROM, RUN, COPY, ...). */
  keyword: string;
  /** Arguments as written, continuations joined with a single space. */
  raw: string;
  /** Leading --flag=value options (COPY --from=x, HEALTHCHECK --interval=30s, ...). */
  flags: Record<string, string>;
  /** `raw` without the leading flags. */
  rest: string;
  /** The exec form when `rest` is a JSON array of strings. */
  exec?: string[];
  /** 1-based line where the instruction starts. */
  line: number;
}

export interface Stage {
  /** The image reference after substituting global ARGs. */
  from: string;
  name?: string;
  index: number;
  instructions: Instruction[];
}

export interface Dockerfile {
  directives: Record<string, string>;
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string | undefined>;
  instructions: Instruction[];
  stages: Stage[];
}

const KEYWORDS = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

function splitFlags(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (;;) {
    const m = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?\s*/.exec(rest);
    if (!m) break;
    flags[m[1]] = m[2] ?? 'true';
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

function execForm(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(rest);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // Not JSON: Docker runs it in shell form.
  }
  return undefined;
}

export function substitute(s: string, vars: Record<string, string | undefined>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a: string, b: string) => vars[a ?? b] ?? '');
}

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split(/\r?\n/);
  const directives: Record<string, string> = {};
  let i = 0;
  // Parser directives: only at the very top, before any other line.
  for (; i < lines.length; i++) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[i]);
    if (!m) break;
    directives[m[1].toLowerCase()] = m[2];
  }
  const escape = directives.escape ?? '\\';
  if (escape !== '\\' && escape !== '`') throw new DockerfileError('syntax', 'escape directive must be \\ or `');

  const instructions: Instruction[] = [];
  while (i < lines.length) {
    const line = lines[i];
    const start = i + 1;
    i++;
    if (/^\s*(#|$)/.test(line)) continue;
    let logical = line;
    while (logical.trimEnd().endsWith(escape)) {
      logical = logical.trimEnd().slice(0, -1);
      // Inside a continuation, comment lines vanish and blank lines are skipped.
      while (i < lines.length && /^\s*(#|$)/.test(lines[i])) i++;
      if (i >= lines.length) throw new DockerfileError('syntax', `line ${start}: continuation at end of file`);
      logical += ' ' + lines[i].trim();
      i++;
    }
    const m = /^\s*([A-Za-z]+)(?:\s+(.*))?$/.exec(logical);
    if (!m) throw new DockerfileError('syntax', `line ${start}: not an instruction`);
    const keyword = m[1].toUpperCase();
    if (!KEYWORDS.has(keyword)) throw new DockerfileError('syntax', `line ${start}: unknown instruction ${m[1]}`);
    const raw = (m[2] ?? '').trim();
    const { flags, rest } = splitFlags(raw);
    const exec = execForm(rest);
    instructions.push({ keyword, raw, flags, rest, ...(exec ? { exec } : {}), line: start });
  }

  const globalArgs: Record<string, string | undefined> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+[Aa][Ss]\s+(\S+))?$/.exec(ins.rest);
      if (!m) throw new DockerfileError('stage', `line ${ins.line}: FROM needs an image and optionally AS name`);
      const name = m[2]?.toLowerCase();
      if (name && stages.some((s) => s.name === name)) throw new DockerfileError('stage', `line ${ins.line}: duplicate stage ${name}`);
      stages.push({ from: substitute(m[1], globalArgs), name, index: stages.length, instructions: [] });
      continue;
    }
    if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new DockerfileError('stage', `line ${ins.line}: only ARG may come before the first FROM`);
      const am = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.rest);
      if (!am) throw new DockerfileError('syntax', `line ${ins.line}: bad ARG`);
      globalArgs[am[1]] = am[2];
      continue;
    }
    stages[stages.length - 1].instructions.push(ins);
  }
  if (stages.length === 0) throw new DockerfileError('stage', 'no FROM');
  return { directives, globalArgs, instructions, stages };
}

/** `KEY=value` pairs of an ENV instruction (the legacy `ENV KEY value` form too). */
export function envPairs(ins: Instruction): Record<string, string> {
  const out: Record<string, string> = {};
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+([^=]*)$/.exec(ins.rest);
  if (legacy && !ins.rest.includes('=')) {
    out[legacy[1]] = legacy[2];
    return out;
  }
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  let m;
  while ((m = re.exec(ins.rest))) out[m[1]] = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
  return out;
}

/**
 * Whether `.dockerignore` excludes a context path (`/`-separated, relative).
 * Patterns are anchored at the context root; `*` and `?` do not cross `/`,
 * `**` does; a directory pattern excludes everything below it; `!` re-includes;
 * the last matching pattern wins (Docker's rules).
 */
export function dockerIgnored(ignoreText: string, path: string): boolean {
  let ignored = false;
  for (let line of ignoreText.split(/\r?\n/)) {
    line = line.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = (negate ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
    const re = new RegExp(
      '^' +
        pattern
          .split('**')
          .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
          .join('.*') +
        '(/.*)?$',
    );
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}
