// Type-checks the ```ts code blocks of the README and the guides (docs/guides/*.md), so that no
// documented call drifts from the API. Each block becomes a module of its own (top-level await
// allowed) in a scratch folder under node_modules/.cache, compiled with the project's strict
// options and `tokenwarden`, `tokenwarden/browser`, ... mapped to the source. A block may use,
// without defining them, only the identifiers of PRELUDE below (a credential called `billing`,
// a private key, ...); anything else must be imported or declared in the block. A block that
// must not be checked (pseudo-code) is fenced as ```ts no-check.
//
//   tsx scripts/check-snippets.ts [file.md ...]
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const scratch = join(root, 'node_modules', '.cache', 'tokenwarden-snippets');

/** Identifiers a snippet may use without defining them, with their types. */
const PRELUDE = `import type * as tw from 'tokenwarden';
declare global {
  /** A warden, for snippets that show one of its methods. */
  const warden: tw.Warden;
  const createWarden: typeof tw.createWarden;
  /** Credentials of the README's examples. */
  const billing: tw.Credential;
  const me: tw.Credential;
  const reports: tw.Credential;
  /** The sign-in source of the browser examples. */
  const signIn: tw.AuthorizationCodeSource;
  /** A private key for private_key_jwt. */
  const privateKey: CryptoKey;
  /** The application's own functions. */
  function alertOps(message: string): void;
  function pageOnCall(id: string, kind: string, evidence: unknown): void;
  function showSignIn(): void;
}
export {};
`;

interface Snippet {
  /** The Markdown file, relative to the root. */
  readonly file: string;
  /** The 1-based line of the block's first code line. */
  readonly line: number;
  readonly code: string;
}

function markdownFiles(): string[] {
  const given = process.argv.slice(2);
  if (given.length > 0) return given.map((file) => resolve(file));
  const guides = join(root, 'docs', 'guides');
  const files = [join(root, 'README.md')];
  try {
    for (const name of readdirSync(guides).sort()) {
      if (name.endsWith('.md')) files.push(join(guides, name));
    }
  } catch {
    // No guides yet.
  }
  return files;
}

/** The ```ts / ```typescript blocks of a Markdown file, not those fenced `no-check`. */
function extract(path: string): Snippet[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const snippets: Snippet[] = [];
  let open: { fence: string; line: number; check: boolean; body: string[] } | undefined;
  for (const [index, text] of lines.entries()) {
    if (!open) {
      const start = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)\b(.*)$/.exec(text);
      if (start) {
        open = {
          fence: start[2] as string,
          line: index + 2,
          check: !/\bno-check\b/.test(start[4] ?? ''),
          body: [],
        };
      }
      continue;
    }
    if (text.trim() === open.fence) {
      if (open.check) {
        snippets.push({ file: relative(root, path), line: open.line, code: open.body.join('\n') });
      }
      open = undefined;
    } else {
      open.body.push(text);
    }
  }
  if (open) throw new Error(`${relative(root, path)}:${open.line - 1}: unclosed code block`);
  return snippets;
}

const snippets = markdownFiles().flatMap(extract);
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
const preludePath = join(scratch, 'prelude.d.ts');
writeFileSync(preludePath, PRELUDE);
const byPath = new Map<string, Snippet>();
for (const [index, snippet] of snippets.entries()) {
  const path = join(scratch, `snippet-${index}.ts`);
  // `export {}` makes every block a module: its names are its own, and top-level await works.
  writeFileSync(path, `${snippet.code}\nexport {};\n`);
  byPath.set(path, snippet);
}

const base = ts.getParsedCommandLineOfConfigFile(
  join(root, 'tsconfig.json'),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  },
);
if (!base) throw new Error('tsconfig.json could not be read');
const entry = (path: string) => [join(root, 'src', path)];
const program = ts.createProgram([preludePath, ...byPath.keys()], {
  ...base.options,
  noEmit: true,
  declaration: false,
  rootDir: root,
  types: ['node'],
  paths: {
    tokenwarden: entry('index.ts'),
    'tokenwarden/browser': entry('browser/index.ts'),
    'tokenwarden/node': entry('node/index.ts'),
    'tokenwarden/redis': entry('redis/index.ts'),
    'tokenwarden/otel': entry('otel/index.ts'),
  },
});

const problems: string[] = [];
for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
  const file = diagnostic.file;
  const snippet = file && byPath.get(resolve(file.fileName));
  if (file && snippet && diagnostic.start !== undefined) {
    const { line, character } = file.getLineAndCharacterOfPosition(diagnostic.start);
    problems.push(`${snippet.file}:${snippet.line + line}:${character + 1}: ${message}`);
  } else if (file) {
    problems.push(`${relative(root, file.fileName)}: ${message}`);
  } else {
    problems.push(message);
  }
}
rmSync(scratch, { recursive: true, force: true });

if (problems.length > 0) {
  console.error(`${problems.length} problems in the code blocks:\n${problems.join('\n')}`);
  process.exit(1);
}
const files = new Set(snippets.map((snippet) => snippet.file));
console.log(`snippets: ${snippets.length} code blocks of ${[...files].join(', ')} type-check`);
