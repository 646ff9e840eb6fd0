// The official 1Claw SDK (@1claw/sdk, built in ../shared/vendor/1claw-sdk, beside this repository) and
// a checker that holds response bodies to the SDK's own declared types. The types are read from the
// SDK's dist/types.d.ts and dist/generated/api-types.d.ts with the TypeScript parser, so the check
// follows the SDK: a required property (no `?`) must be present, and every property present must
// have the declared primitive type (string, number, boolean, literal, array, nested interface).
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";

/** The repository's root; the SDK is at ../shared/vendor/1claw-sdk from it, in CI as here. */
const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
export const SDK_DIR = path.resolve(REPO_ROOT, "../shared/vendor/1claw-sdk");

/** The SDK's entry point, imported by path (it is not published on the registry reachable here). */
export async function loadSdk(): Promise<typeof import("../../../shared/vendor/1claw-sdk/dist/index.js")> {
  return import(path.join(SDK_DIR, "dist/index.js"));
}

type Decl = ts.InterfaceDeclaration | ts.TypeAliasDeclaration;

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, fs.readFileSync(path.join(SDK_DIR, "dist", file), "utf8"), ts.ScriptTarget.Latest, true);
}

let index: { decls: Map<string, Decl[]>; schemas: Map<string, ts.TypeNode> } | undefined;

function load() {
  if (index) return index;
  const decls = new Map<string, Decl[]>();
  for (const st of parse("types.d.ts").statements) {
    if (ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) {
      decls.set(st.name.text, [...(decls.get(st.name.text) ?? []), st]);
    }
  }
  // components["schemas"] of the generated OpenAPI types, for aliases such as ApiSchemas["X"].
  const schemas = new Map<string, ts.TypeNode>();
  for (const st of parse("generated/api-types.d.ts").statements) {
    if (!ts.isInterfaceDeclaration(st) || st.name.text !== "components") continue;
    for (const m of st.members) {
      if (ts.isPropertySignature(m) && m.name.getText() === "schemas" && m.type && ts.isTypeLiteralNode(m.type)) {
        for (const s of m.type.members) if (ts.isPropertySignature(s) && s.type) schemas.set(s.name.getText().replace(/"/g, ""), s.type);
      }
    }
  }
  index = { decls, schemas };
  return index;
}

interface Member {
  name: string;
  optional: boolean;
  type?: ts.TypeNode;
}

function membersOf(members: ts.NodeArray<ts.TypeElement>): Member[] {
  return members
    .filter(ts.isPropertySignature)
    .map((m) => ({ name: m.name.getText().replace(/^"|"$/g, ""), optional: m.questionToken !== undefined, type: m.type }));
}

/** The properties a named SDK type declares (interface declarations merged, aliases followed). */
export function sdkMembers(typeName: string): Member[] {
  const node = resolveName(typeName);
  if (!node) throw new Error(`the SDK declares no type ${typeName}`);
  if (Array.isArray(node)) return node;
  if (ts.isTypeLiteralNode(node)) return membersOf(node.members);
  throw new Error(`${typeName} is not an object type`);
}

/** Required property names of an SDK type, as its .d.ts marks them. */
export function sdkRequired(typeName: string): string[] {
  return sdkMembers(typeName)
    .filter((m) => !m.optional)
    .map((m) => m.name);
}

function resolveName(name: string): Member[] | ts.TypeNode | undefined {
  const { decls, schemas } = load();
  const ds = decls.get(name);
  if (!ds) return schemas.get(name);
  const interfaces = ds.filter(ts.isInterfaceDeclaration);
  if (interfaces.length) return interfaces.flatMap((d) => membersOf(d.members));
  return (ds[0] as ts.TypeAliasDeclaration).type;
}

/** `ApiSchemas["X"]` or `components["schemas"]["X"]` → X. */
function schemaName(node: ts.IndexedAccessTypeNode): string | undefined {
  if (!ts.isLiteralTypeNode(node.indexType) || !ts.isStringLiteral(node.indexType.literal)) return undefined;
  return node.indexType.literal.text;
}

function check(node: ts.TypeNode | Member[] | undefined, value: unknown, at: string, errors: string[], depth = 0): void {
  if (!node || depth > 12) return;
  if (Array.isArray(node)) return checkObject(node, value, at, errors, depth);
  switch (node.kind) {
    case ts.SyntaxKind.StringKeyword:
      if (typeof value !== "string") errors.push(`${at}: expected string, got ${JSON.stringify(value)}`);
      return;
    case ts.SyntaxKind.NumberKeyword:
      if (typeof value !== "number") errors.push(`${at}: expected number, got ${JSON.stringify(value)}`);
      return;
    case ts.SyntaxKind.BooleanKeyword:
      if (typeof value !== "boolean") errors.push(`${at}: expected boolean, got ${JSON.stringify(value)}`);
      return;
  }
  if (ts.isParenthesizedTypeNode(node)) return check(node.type, value, at, errors, depth);
  if (ts.isLiteralTypeNode(node)) {
    const lit = node.literal;
    const expected =
      lit.kind === ts.SyntaxKind.NullKeyword
        ? null
        : ts.isStringLiteral(lit)
          ? lit.text
          : ts.isNumericLiteral(lit)
            ? Number(lit.text)
            : lit.kind === ts.SyntaxKind.TrueKeyword
              ? true
              : lit.kind === ts.SyntaxKind.FalseKeyword
                ? false
                : undefined;
    if (value !== expected) errors.push(`${at}: expected ${lit.getText()}, got ${JSON.stringify(value)}`);
    return;
  }
  if (ts.isUnionTypeNode(node)) {
    const attempts = node.types.map((t) => {
      const e: string[] = [];
      check(t, value, at, e, depth + 1);
      return e;
    });
    if (!attempts.some((e) => e.length === 0))
      errors.push(`${at}: matches none of ${node.getText()}: ${attempts.flat().slice(0, 3).join("; ")}`);
    return;
  }
  if (ts.isArrayTypeNode(node)) {
    if (!Array.isArray(value)) return void errors.push(`${at}: expected an array, got ${JSON.stringify(value)}`);
    value.forEach((v, i) => check(node.elementType, v, `${at}[${i}]`, errors, depth + 1));
    return;
  }
  if (ts.isTypeLiteralNode(node)) return checkObject(membersOf(node.members), value, at, errors, depth);
  if (ts.isIndexedAccessTypeNode(node)) {
    const name = schemaName(node);
    if (name) check(load().schemas.get(name), value, at, errors, depth + 1);
    return;
  }
  if (ts.isTypeReferenceNode(node)) {
    const name = node.typeName.getText();
    if (name === "Record") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) errors.push(`${at}: expected an object`);
      return;
    }
    check(resolveName(name), value, at, errors, depth + 1);
  }
  // unknown, any and anything else: no constraint
}

function checkObject(members: Member[], value: unknown, at: string, errors: string[], depth: number): void {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return void errors.push(`${at}: expected an object, got ${JSON.stringify(value)}`);
  const o = value as Record<string, unknown>;
  for (const m of members) {
    if (o[m.name] === undefined) {
      if (!m.optional) errors.push(`${at}.${m.name}: required by the SDK's type, missing`);
      continue;
    }
    check(m.type, o[m.name], `${at}.${m.name}`, errors, depth + 1);
  }
}

/** Throws unless `body` satisfies the SDK's declared type `typeName`. */
export function assertMatchesSdkType(typeName: string, body: unknown): void {
  const node = resolveName(typeName);
  if (!node) throw new Error(`the SDK declares no type ${typeName}`);
  const errors: string[] = [];
  check(node, body, typeName, errors);
  if (errors.length)
    throw new Error(
      `response does not match the SDK's ${typeName}:\n  ${errors.slice(0, 20).join("\n  ")}\n${JSON.stringify(body).slice(0, 1500)}`,
    );
}
