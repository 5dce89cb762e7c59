import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/** Reading an OpenAPI 3.1 document in tests: finding the operation for a request, and checking against its schemas. */

export interface Operation {
  tags?: string[];
  parameters?: { name: string; in: string; required?: boolean; schema: object }[];
  requestBody?: { content: Record<string, { schema: object }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: object }> }>;
  security?: Record<string, string[]>[];
}

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

export interface Matched {
  template: string;
  method: string;
  operation: Operation;
}

/** Ajv for JSON Schema 2020-12, which OpenAPI 3.1 schemas are; `coerce` reads text as query strings do. */
export function createAjv({ coerce }: { coerce: boolean }) {
  return addFormats.default(new Ajv2020({ strict: false, allErrors: true, coerceTypes: coerce }));
}

/**
 * The operation a concrete path (`/v1/teams/team_x/keys`, or `$TEAM` in the README) is
 * an instance of; the template with the fewest parameters wins, as in the router.
 */
export function matchOperation(document: OpenApiDocument, method: string, path: string): Matched | undefined {
  const candidates = Object.keys(document.paths)
    .filter((template) => new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path))
    .sort((a, b) => (a.match(/\{/g) ?? []).length - (b.match(/\{/g) ?? []).length);
  for (const template of candidates) {
    const operation = document.paths[template]![method.toLowerCase()];
    if (operation !== undefined) return { template, method: method.toLowerCase(), operation };
  }
  return undefined;
}

/** The error codes an operation documents, by status. */
export function documentedErrors(operation: Operation): Map<number, string[]> {
  const codes = new Map<number, string[]>();
  for (const [status, response] of Object.entries(operation.responses)) {
    const schema = response.content?.['application/json']?.schema as { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } } | undefined;
    const list = schema?.properties?.error?.properties?.code?.enum;
    if (list !== undefined) codes.set(Number(status), list);
  }
  return codes;
}
