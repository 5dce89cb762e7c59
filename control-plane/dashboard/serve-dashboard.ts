import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { FastifyInstance } from 'fastify';

const STATIC_DIR = new URL('./static/', import.meta.url);

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

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

const HTML = 'text/html; charset=utf-8';

/**
 * The dashboard at `/` and the API reference at `/reference` (which renders /openapi.json);
 * every script and style sheet in static/ is an asset, so a new module needs no change here.
 */
async function dashboardFiles(): Promise<Map<string, { file: string; type: string }>> {
  const files = new Map([
    ['/', { file: 'index.html', type: HTML }],
    ['/reference', { file: 'reference.html', type: HTML }],
  ]);
  for (const entry of await readdir(STATIC_DIR, { withFileTypes: true })) {
    const type = ASSET_TYPES[extname(entry.name)];
    if (entry.isFile() && type !== undefined) files.set(`/assets/${entry.name}`, { file: entry.name, type });
  }
  return files;
}

/** Serves the dashboard's static files from memory, read once at start-up. */
export async function registerDashboard(app: FastifyInstance): Promise<void> {
  for (const [path, { file, type }] of await dashboardFiles()) {
    const body = await readFile(new URL(file, STATIC_DIR));
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
