// Fails when an export of a public entry lacks TSDoc with a description, an @example, its
// parameters, defaults or errors, so the reference never ships an API whose use has to be guessed
// (typedoc checks descriptions only).
//
// Rules, for every export of the public entries:
// - A description and an `@example`.
// - Functions: an `@param` for each parameter and `@returns` unless they return `void`. Methods of
//   exported classes and interfaces: an `@param` for each parameter.
// - Defaults: every optional property of an option interface has a `@default` tag. Option
//   interfaces are the exported interfaces (and object type aliases) whose name ends in `Options`,
//   the exported interfaces they extend, and the exported property-only interfaces their
//   properties refer to (e.g. `CredentialTuning`, `BackoffOptions`). Convention: `@default` is
//   followed by the value as code (`@default '30s'`, `@default false`) or, when the value is
//   computed, a short phrase (`@default derived from the lifetime`). When there is no default (the
//   feature is off or the value absent unless given), write `@default undefined (what that
//   means)`, e.g. `@default undefined (no rotation)`.
// - Errors: every exported function, every public method of an exported class or interface, every
//   public function-valued property of an exported class (`credential.fetch`) and every public
//   constructor of an exported class has a `@throws` tag that names the `ERR_*` code(s) it throws
//   or rejects with, e.g. `@throws {@link TokenWardenError} ERR_INVALID_ARGUMENT when ...`. One
//   that never throws a tokenwarden error says so with a `@throws` that starts with `Never`, e.g.
//   `@throws Never: a closed credential reports its state.` Every code named must be a
//   `TokenWardenErrorCode`. Interfaces the app implements (tokenwarden only calls them) are in
//   `APP_IMPLEMENTED` below, with the reason, and need no `@throws`.
import ts from 'typescript';

/** Exported interfaces whose methods the app implements and tokenwarden calls: no `@throws`. */
const APP_IMPLEMENTED: Record<string, string> = {
  WardenObserver: 'callbacks the app implements; tokenwarden catches and logs what they throw',
  RecordBackend: 'a backend the app writes for sealedStore(); its errors reach TokenStore callers',
  RedisClient: 'the subset of ioredis the app passes in; its errors are ioredis errors',
  RedisSubscriber: 'the subset of ioredis the app passes in; its errors are ioredis errors',
  AuthorizationStorage: 'the Web Storage subset the app passes in (sessionStorage by default)',
};

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

// The block tags of a node's TSDoc as written, parsed here: TypeScript reads the `@link` of
// `@throws {@link X}` as a tag of its own and loses the text that follows.
function tagsOf(node: ts.Node, name: string): string[] {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  const doc = docs[docs.length - 1];
  if (!doc) return [];
  const lines = node
    .getSourceFile()
    .text.slice(doc.getStart(), doc.end)
    .replace(/^\/\*\*|\*\/$/g, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''));
  const found: string[] = [];
  let current: string[] | undefined;
  let fenced = false;
  for (const line of lines) {
    if (line.trimStart().startsWith('```')) fenced = !fenced;
    const tag = fenced ? null : /^@(\w+)\s*(.*)$/.exec(line.trim());
    if (tag) {
      if (current) found.push(current.join(' ').replace(/\s+/g, ' ').trim());
      current = tag[1] === name ? [tag[2] ?? ''] : undefined;
    } else if (current) {
      current.push(line);
    }
  }
  if (current) found.push(current.join(' ').replace(/\s+/g, ' ').trim());
  return found;
}

function where(name: string, declaration: ts.Node): string {
  return `${name} (${declaration.getSourceFile().fileName.replace(/^.*?src\//, 'src/')})`;
}

// The error codes, read from the TokenWardenErrorCode union, to validate the codes @throws names.
const knownCodes = new Set<string>();
// Every declaration exported from a public entry, by symbol.
const exportedSymbols = new Map<ts.Symbol, string>();

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
    exportedSymbols.set(symbol, exported.name);
    const declaration = symbol.declarations?.[0];
    if (exported.name === 'TokenWardenErrorCode' && declaration) {
      const type = checker.getDeclaredTypeOfSymbol(symbol);
      for (const member of type.isUnion() ? type.types : [type]) {
        if (member.isStringLiteral()) knownCodes.add(member.value);
      }
    }
  }
}

// Checks the @throws of a function or method: present, and naming real codes or `Never`.
function checkThrows(label: string, declarations: readonly ts.Node[]): void {
  const throws = declarations.flatMap((declaration) => tagsOf(declaration, 'throws'));
  if (throws.length === 0) {
    problems.push(`${label}: no @throws (name the ERR_* codes, or start it with "Never")`);
    return;
  }
  for (const text of throws) {
    if (/^Never\b/.test(text)) continue;
    const codes = text.match(/\bERR_[A-Z_]+\b/g) ?? [];
    if (codes.length === 0) problems.push(`${label}: @throws names no ERR_* code: "${text}"`);
    for (const code of codes) {
      if (!knownCodes.has(code)) problems.push(`${label}: @throws names unknown code ${code}`);
    }
  }
}

function isPublicMember(member: ts.ClassElement | ts.TypeElement): boolean {
  if (!member.name || ts.isPrivateIdentifier(member.name)) return false;
  const flags = ts.getCombinedModifierFlags(member as unknown as ts.Declaration);
  if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return false;
  return !ts.getJSDocTags(member).some((tag) => tag.tagName.text === 'internal');
}

// Option interfaces: exported, named *Options, plus the exported interfaces they extend and the
// exported property-only interfaces their properties refer to.
type OptionDeclaration = ts.InterfaceDeclaration | ts.TypeAliasDeclaration;
const optionDeclarations = new Map<OptionDeclaration, string>();

function membersOf(declaration: OptionDeclaration): readonly ts.TypeElement[] {
  if (ts.isInterfaceDeclaration(declaration)) return declaration.members;
  return ts.isTypeLiteralNode(declaration.type) ? declaration.type.members : [];
}

function addOptions(symbol: ts.Symbol, byName: boolean): void {
  const name = exportedSymbols.get(symbol);
  if (name === undefined) return;
  for (const declaration of symbol.declarations ?? []) {
    if (!ts.isInterfaceDeclaration(declaration) && !ts.isTypeAliasDeclaration(declaration))
      continue;
    if (optionDeclarations.has(declaration)) continue;
    const members = membersOf(declaration);
    if (!byName && members.some((member) => !ts.isPropertySignature(member))) continue;
    optionDeclarations.set(declaration, name);
    const references: ts.Node[] = [];
    if (ts.isInterfaceDeclaration(declaration)) {
      for (const clause of declaration.heritageClauses ?? []) references.push(...clause.types);
    } else {
      references.push(declaration.type);
    }
    for (const member of members)
      if (ts.isPropertySignature(member) && member.type) references.push(member.type);
    const visit = (node: ts.Node): void => {
      const target = ts.isTypeReferenceNode(node)
        ? node.typeName
        : ts.isExpressionWithTypeArguments(node)
          ? node.expression
          : undefined;
      if (target) {
        let referenced = checker.getSymbolAtLocation(target);
        if (referenced && referenced.flags & ts.SymbolFlags.Alias) {
          referenced = checker.getAliasedSymbol(referenced);
        }
        if (referenced) addOptions(referenced, ts.isExpressionWithTypeArguments(node));
      }
      // What a callback receives or returns is not an option.
      if (!ts.isFunctionTypeNode(node)) node.forEachChild(visit);
    };
    for (const reference of references) visit(reference);
  }
}

for (const [symbol, name] of exportedSymbols) {
  if (name.endsWith('Options')) addOptions(symbol, true);
}

for (const [declaration, name] of optionDeclarations) {
  for (const member of membersOf(declaration)) {
    if (!member.questionToken || !member.name) continue;
    const label = `${where(name, declaration)}.${member.name.getText()}`;
    const defaults = tagsOf(member, 'default');
    if (defaults.length === 0) {
      problems.push(`${label}: optional option without @default`);
      continue;
    }
    const text = defaults[0]!;
    if (!text) problems.push(`${label}: empty @default`);
    else if (/^undefined\b/.test(text) && !/^undefined \(.+\)$/s.test(text)) {
      problems.push(`${label}: write "@default undefined (what that means)"`);
    } else if (/^(none|no default|n\/a|-)\b/i.test(text)) {
      problems.push(`${label}: write "@default undefined (what that means)", not "${text}"`);
    }
  }
}

/** Every parameter of a function or method has a `@param`. */
function checkParams(label: string, signature: ts.SignatureDeclarationBase): void {
  const documented = new Set(
    ts
      .getJSDocTags(signature)
      .filter(ts.isJSDocParameterTag)
      .map((tag) => tag.name.getText()),
  );
  for (const parameter of signature.parameters) {
    const parameterName = parameter.name.getText();
    if (!documented.has(parameterName)) {
      problems.push(`${label}: parameter ${parameterName} has no @param`);
    }
  }
}

for (const [symbol, name] of exportedSymbols) {
  const declaration = symbol.declarations?.[0];
  if (!declaration) continue;
  const at = where(name, declaration);
  const description = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
  const tags = symbol.getJsDocTags(checker).map((tag) => tag.name);
  if (!description) problems.push(`${at}: no description`);
  if (!tags.includes('example')) problems.push(`${at}: no @example`);
  // A function's parameters are each documented (typedoc shows them in the signature).
  if (ts.isFunctionDeclaration(declaration)) {
    checkParams(at, declaration);
    const returns = declaration.type?.getText();
    if (returns && returns !== 'void' && !tags.includes('returns')) {
      problems.push(`${at}: no @returns`);
    }
    checkThrows(at, symbol.declarations ?? []);
  }
  // So are the parameters of the methods of exported classes and interfaces, and their errors.
  if (ts.isClassDeclaration(declaration) || ts.isInterfaceDeclaration(declaration)) {
    const seen = new Set<string>();
    for (const member of declaration.members as readonly (ts.ClassElement | ts.TypeElement)[]) {
      if (ts.isConstructorDeclaration(member)) {
        const hidden =
          ts.getCombinedModifierFlags(member) &
            (ts.ModifierFlags.Private | ts.ModifierFlags.Protected) ||
          ts.getJSDocTags(member).some((tag) => tag.tagName.text === 'internal');
        if (!hidden && member.body) checkThrows(`${at} constructor`, [member]);
        continue;
      }
      // A function-valued property of a class (`credential.fetch`) is called like a method.
      if (
        ts.isPropertyDeclaration(member) &&
        isPublicMember(member) &&
        checker.getTypeAtLocation(member).getCallSignatures().length > 0
      ) {
        checkThrows(`${at}.${member.name.getText()}`, [member]);
        continue;
      }
      if (!ts.isMethodDeclaration(member) && !ts.isMethodSignature(member)) continue;
      if (!isPublicMember(member)) continue;
      const memberName = member.name.getText();
      const label = `${at}.${memberName}`;
      if (!seen.has(memberName) && !(name in APP_IMPLEMENTED)) {
        seen.add(memberName);
        const overloads = (declaration.members as readonly ts.Node[]).filter(
          (other) =>
            (ts.isMethodDeclaration(other) || ts.isMethodSignature(other)) &&
            other.name.getText() === memberName,
        );
        // An override documents its errors where it is first declared.
        const inherited =
          ts.isMethodDeclaration(member) &&
          (ts.getCombinedModifierFlags(member) & ts.ModifierFlags.Override) !== 0;
        if (!inherited) checkThrows(label, overloads);
      }
      checkParams(label, member);
    }
  }
}

if (problems.length > 0) {
  console.error(`${problems.length} documentation problems:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(
  `documentation: every export of ${entries.join(', ')} has a description, an @example, ` +
    '@param, @returns and @throws tags, and a @default for each optional option',
);
