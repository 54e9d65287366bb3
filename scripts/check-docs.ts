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
    // A function's parameters are each documented (typedoc shows them in the signature).
    if (ts.isFunctionDeclaration(declaration)) {
      const documented = new Set(
        ts
          .getJSDocTags(declaration)
          .filter(ts.isJSDocParameterTag)
          .map((tag) => tag.name.getText()),
      );
      for (const parameter of declaration.parameters) {
        const name = parameter.name.getText();
        if (!documented.has(name)) problems.push(`${where}: parameter ${name} has no @param`);
      }
      const returns = declaration.type?.getText();
      if (returns && returns !== 'void' && !tags.includes('returns')) {
        problems.push(`${where}: no @returns`);
      }
    }
    // So are the parameters of the methods of exported classes and interfaces.
    if (ts.isClassDeclaration(declaration) || ts.isInterfaceDeclaration(declaration)) {
      for (const member of declaration.members) {
        if (!ts.isMethodDeclaration(member) && !ts.isMethodSignature(member)) continue;
        if (member.parameters.length === 0 || !member.name) continue;
        if (ts.getCombinedModifierFlags(member as ts.Declaration) & ts.ModifierFlags.Private) {
          continue;
        }
        if (ts.isPrivateIdentifier(member.name)) continue;
        const internal = ts.getJSDocTags(member).some((tag) => tag.tagName.text === 'internal');
        if (internal) continue;
        const documented = new Set(
          ts
            .getJSDocTags(member)
            .filter(ts.isJSDocParameterTag)
            .map((tag) => tag.name.getText()),
        );
        for (const parameter of member.parameters) {
          const name = parameter.name.getText();
          if (!documented.has(name)) {
            problems.push(`${where}.${member.name.getText()}: parameter ${name} has no @param`);
          }
        }
      }
    }
  }
}

if (problems.length > 0) {
  console.error(`${problems.length} documentation problems:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(
  `documentation: every export of ${entries.join(', ')} has a description and an @example`,
);
