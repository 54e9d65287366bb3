// Fails when an export of a public entry lacks TSDoc with a description and an @example, so the
// reference never ships an undocumented or example-less API (typedoc checks descriptions only).
import ts from 'typescript';

const entries = process.argv.slice(2);
if (entries.length === 0) {
  entries.push(
    'src/index.ts',
    'src/browser/index.ts',
    'src/node/index.ts',
    'src/redis/index.ts',
    'src/otel/index.ts',
  );
}

const program = ts.createProgram(entries, {
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  target: ts.ScriptTarget.ES2022,
  strict: true,
  skipLibCheck: true,
});
const checker = program.getTypeChecker();
const problems: string[] = [];

for (const entry of entries) {
  const file = program.getSourceFile(entry);
  const moduleSymbol = file && checker.getSymbolAtLocation(file);
  if (!moduleSymbol) {
    problems.push(`${entry}: not a module`);
    continue;
  }
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol =
      exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const declaration = symbol.declarations?.[0];
    if (!declaration) continue;
    const where = `${exported.name} (${declaration.getSourceFile().fileName.replace(/^.*?src\//, 'src/')})`;
    const description = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
    const tags = symbol.getJsDocTags(checker).map((tag) => tag.name);
    if (!description) problems.push(`${where}: no description`);
    if (!tags.includes('example')) problems.push(`${where}: no @example`);
  }
}

if (problems.length > 0) {
  console.error(`${problems.length} documentation problems:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(
  `documentation: every export of ${entries.join(', ')} has a description and an @example`,
);
