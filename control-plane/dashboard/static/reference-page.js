// @ts-check
/**
 * The API reference: renders this control plane's /openapi.json as a page, grouped by
 * tag. Everything from the document goes in as text (never as HTML), so the page runs
 * under the dashboard's Content-Security-Policy with no inline script or style.
 */

/**
 * @typedef {{ type?: string | string[], enum?: unknown[], format?: string, description?: string, properties?: Record<string, Schema>,
 *   required?: string[], items?: Schema, anyOf?: Schema[], minimum?: number, maximum?: number, minLength?: number, maxLength?: number,
 *   minItems?: number, maxItems?: number, default?: unknown, pattern?: string }} Schema
 */
/** @typedef {{ name: string, in: string, required?: boolean, description?: string, schema?: Schema }} Parameter */
/** @typedef {{ description?: string, content?: Record<string, { schema?: Schema }> }} ApiResponse */
/**
 * @typedef {{ summary?: string, description?: string, tags?: string[], parameters?: Parameter[],
 *   requestBody?: { content?: Record<string, { schema?: Schema }> }, responses?: Record<string, ApiResponse>,
 *   security?: Record<string, string[]>[] }} Operation
 */
/** @typedef {{ info: { title: string, description?: string }, tags?: { name: string, description?: string }[], paths: Record<string, Record<string, Operation>> }} ApiDocument */

const METHODS = ['get', 'post', 'patch', 'put', 'delete'];

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string | null)[]} children
 */
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) if (child !== null) element.append(child);
  return element;
}

/**
 * Text with `code` spans, as the document writes them.
 * @param {string} text
 */
function prose(text) {
  const parts = text.split('`');
  return parts.map((part, index) => (index % 2 === 1 ? el('code', {}, part) : document.createTextNode(part)));
}

/**
 * @param {Schema | undefined} schema
 * @returns {string}
 */
function typeOf(schema) {
  if (schema === undefined) return '';
  if (schema.anyOf !== undefined) return schema.anyOf.map(typeOf).join(' or ');
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? 'any'];
  const named = types.map((type) => (type === 'array' ? `array of ${typeOf(schema.items) || 'any'}` : type === 'string' && schema.format ? `${type} (${schema.format})` : type));
  return named.join(' or ');
}

/** @param {Schema} schema */
function limitsOf(schema) {
  const limits = [];
  if (schema.enum !== undefined) limits.push(`one of ${schema.enum.map((value) => JSON.stringify(value)).join(', ')}`);
  if (schema.minimum !== undefined) limits.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) limits.push(`≤ ${schema.maximum}`);
  if (schema.minLength !== undefined || schema.maxLength !== undefined) limits.push(`${schema.minLength ?? 0}–${schema.maxLength ?? '∞'} characters`);
  if (schema.minItems !== undefined || schema.maxItems !== undefined) limits.push(`${schema.minItems ?? 0}–${schema.maxItems ?? '∞'} items`);
  if (schema.default !== undefined) limits.push(`default ${JSON.stringify(schema.default)}`);
  return limits.join('; ');
}

/**
 * One row per field, nested fields named with dots (`rateLimit.burst`, `keys[].name`).
 * @param {Schema | undefined} schema
 * @param {string} prefix
 * @returns {{ name: string, schema: Schema, required: boolean }[]}
 */
function fieldsOf(schema, prefix = '') {
  if (schema === undefined) return [];
  const object = schema.anyOf?.find((option) => option.properties !== undefined) ?? schema;
  if (object.properties === undefined) return object.items === undefined ? [] : fieldsOf(object.items, `${prefix}[]`);
  return Object.entries(object.properties).flatMap(([name, field]) => {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    return [{ name: path, schema: field, required: (object.required ?? []).includes(name) }, ...fieldsOf(field, path)];
  });
}

/**
 * @param {string[]} titles
 * @param {(Node | string)[][]} rows
 */
function table(titles, rows) {
  return el(
    'div',
    { class: 'table-box' },
    el('table', {}, el('thead', {}, el('tr', {}, ...titles.map((title) => el('th', { scope: 'col' }, title)))), el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((cell) => el('td', {}, cell)))))),
  );
}

/** @param {{ name: string, schema: Schema, required: boolean }[]} fields */
function fieldTable(fields) {
  return table(
    ['Field', 'Type', 'Required', 'Notes'],
    fields.map((field) => [el('code', {}, field.name), typeOf(field.schema), field.required ? 'yes' : 'no', el('span', {}, ...prose([field.schema.description, limitsOf(field.schema)].filter(Boolean).join('. ')))]),
  );
}

/** @param {string} method @param {string} path */
const anchorOf = (method, path) => `${method}-${path.replace(/[^A-Za-z0-9]+/g, '-')}`;

/** @param {string} method @param {string} path @param {Operation} operation */
function renderOperation(method, path, operation) {
  const section = el('section', { class: 'operation', id: anchorOf(method, path) }, el('h3', {}, el('span', { class: 'method' }, method.toUpperCase()), ` ${path}`));
  if (operation.summary) section.append(el('p', {}, el('strong', {}, operation.summary)));
  if (operation.description) section.append(el('p', { class: 'description' }, ...prose(operation.description)));
  const scopes = (operation.security ?? []).flatMap((requirement) => Object.entries(requirement).map(([scheme, roles]) => (roles.length > 0 ? `${scheme}: ${roles.join(', ')}` : scheme)));
  if (scopes.length > 0) section.append(el('p', { class: 'muted' }, `Authorization: ${scopes.join(' or ')}`));
  const parameters = operation.parameters ?? [];
  if (parameters.length > 0) {
    section.append(
      el('h4', {}, 'Parameters'),
      table(
        ['Name', 'In', 'Type', 'Required', 'Notes'],
        parameters.map((parameter) => [el('code', {}, parameter.name), parameter.in, typeOf(parameter.schema), parameter.required ? 'yes' : 'no', el('span', {}, ...prose([parameter.description ?? parameter.schema?.description, parameter.schema && limitsOf(parameter.schema)].filter(Boolean).join('. ')))]),
      ),
    );
  }
  const body = operation.requestBody?.content?.['application/json']?.schema;
  if (body !== undefined) section.append(el('h4', {}, 'Request body'), fieldTable(fieldsOf(body)));
  for (const [status, response] of Object.entries(operation.responses ?? {})) {
    const [mediaType, media] = Object.entries(response.content ?? {})[0] ?? [];
    const codes = fieldsOf(media?.schema).find((field) => field.name === 'error.code')?.schema.enum;
    if (codes !== undefined) {
      section.append(el('p', { class: 'codes' }, el('strong', {}, `${status} `), ...codes.map((code) => el('code', {}, String(code)))));
      continue;
    }
    section.append(el('h4', {}, `${status} ${mediaType ?? ''}`), el('p', { class: 'description' }, ...prose(response.description ?? '')));
    const fields = mediaType === 'application/json' ? fieldsOf(media?.schema) : [];
    if (fields.length > 0) section.append(fieldTable(fields));
  }
  return section;
}

async function renderReference() {
  const main = /** @type {HTMLElement} */ (document.getElementById('reference'));
  const contents = /** @type {HTMLElement} */ (document.getElementById('contents'));
  const response = await fetch('/openapi.json');
  if (!response.ok) throw new Error(`The control plane answered ${response.status} for /openapi.json.`);
  /** @type {ApiDocument} */
  const spec = await response.json();
  const byTag = new Map((spec.tags ?? []).map((tag) => [tag.name, { description: tag.description ?? '', operations: /** @type {HTMLElement[]} */ ([]), links: /** @type {HTMLElement[]} */ ([]) }]));
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const method of METHODS) {
      const operation = operations[method];
      if (operation === undefined) continue;
      const tag = operation.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, { description: '', operations: [], links: [] });
      const group = /** @type {{ operations: HTMLElement[], links: HTMLElement[] }} */ (byTag.get(tag));
      group.operations.push(renderOperation(method, path, operation));
      group.links.push(el('a', { href: `#${anchorOf(method, path)}` }, `${method.toUpperCase()} ${path}`));
    }
  }
  main.replaceChildren(el('h1', {}, spec.info.title), ...(spec.info.description ?? '').split('\n\n').map((paragraph) => el('p', {}, ...prose(paragraph))));
  contents.replaceChildren();
  for (const [tag, group] of byTag) {
    if (group.operations.length === 0) continue;
    const id = `tag-${tag.replace(/[^A-Za-z0-9]+/g, '-')}`;
    contents.append(el('h2', {}, el('a', { href: `#${id}` }, tag)), ...group.links);
    main.append(el('h2', { id }, tag), el('p', { class: 'muted' }, ...prose(group.description)), ...group.operations);
  }
  if (location.hash !== '') document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

renderReference().catch((error) => {
  const main = /** @type {HTMLElement} */ (document.getElementById('reference'));
  main.replaceChildren(el('p', { class: 'error', role: 'alert' }, error instanceof Error ? error.message : String(error)));
});
