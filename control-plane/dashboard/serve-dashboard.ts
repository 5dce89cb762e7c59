import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';

const STATIC_DIR = new URL('./static/', import.meta.url);

/**
 * Library files served as our own assets, from 'self' like everything else: read from the
 * installed package (a production dependency), so the source tree and the built dist serve
 * the same bytes and nothing is copied or committed.
 */
const VENDOR_ASSETS: Record<string, string> = {
  'uplot.js': 'uplot/dist/uPlot.esm.js',
  'uplot.css': 'uplot/dist/uPlot.min.css',
};

/** No inline script or style, nothing from another origin: the page talks only to this API. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const packages = createRequire(import.meta.url);

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

const HTML = 'text/html; charset=utf-8';

/**
 * The dashboard at `/` and the API reference at `/reference` (which renders /openapi.json);
 * every script and style sheet in static/ is an asset, so a new module needs no change here.
 */
async function dashboardFiles(): Promise<Map<string, { file: URL; type: string }>> {
  const files = new Map([
    ['/', { file: new URL('index.html', STATIC_DIR), type: HTML }],
    ['/reference', { file: new URL('reference.html', STATIC_DIR), type: HTML }],
  ]);
  for (const entry of await readdir(STATIC_DIR, { withFileTypes: true })) {
    const type = ASSET_TYPES[extname(entry.name)];
    if (entry.isFile() && type !== undefined) files.set(`/assets/${entry.name}`, { file: new URL(entry.name, STATIC_DIR), type });
  }
  for (const [name, specifier] of Object.entries(VENDOR_ASSETS)) {
    files.set(`/assets/${name}`, { file: pathToFileURL(packages.resolve(specifier)), type: ASSET_TYPES[extname(name)]! });
  }
  return files;
}

/** Serves the dashboard's static files from memory, read once at start-up. */
export async function registerDashboard(app: FastifyInstance): Promise<void> {
  for (const [path, { file, type }] of await dashboardFiles()) {
    const body = await readFile(file);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
    // Pages and assets, not API: left out of /openapi.json.
    app.get(path, { schema: { hide: true } }, async (request, reply) => {
      reply
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('x-frame-options', 'DENY')
        .header('cache-control', 'no-cache')
        .header('etag', etag)
        .type(type);
      if (request.headers['if-none-match'] === etag) return reply.status(304).send();
      return reply.send(body);
    });
  }
}
