import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/database.js';
import { teamParams } from '../http/validation.js';
import { explainRequest, type ExplainRequest } from './explain.js';

export interface ExplainRoutesOptions {
  db: Database;
  /** What nodes are assumed to allow (ALLOW_PRIVATE_DESTINATIONS). */
  allowPrivateDestinations: boolean;
}

const text = (maxLength: number) => ({ type: 'string', maxLength }) as const;
const nullable = (schema: object) => ({ anyOf: [schema, { type: 'null' }] });
const nullableString = { type: ['string', 'null'] } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;

const explainBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    key: { ...text(1024), description: 'the secret, as a client sends it; never stored or logged' },
    keyId: { ...text(64), description: 'or the key by id' },
    username: { ...text(1024), description: 'the proxy username, with its targeting (`acme-country-de-session-s1`)' },
    headers: { type: 'object', additionalProperties: text(1024), maxProperties: 50, description: 'request headers such as `Proxy-Country`, or `Proxy-Authorization` itself' },
    destination: { ...text(2048), description: '`http://host[:port]/path` (a plain request), `https://host[:port]` or `host:port` (a CONNECT)' },
    clientAddress: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }], description: "the client's IP address, for the key's allowedClientCidrs; without it they are not judged" },
  },
} as const;

const explainAnswer = {
  description: 'What a node would do, and what it saw on the way, up to the first refusal.',
  type: 'object',
  required: ['outcome', 'refusal', 'credential', 'key', 'limits', 'destination', 'exits'],
  properties: {
    outcome: { type: 'string', enum: ['allowed', 'refused'], description: 'allowed: the node would send it out (rate limits and concurrency, which depend on live traffic, permitting)' },
    refusal: nullable({
      type: 'object',
      required: ['stage', 'status', 'code', 'hint'],
      properties: {
        stage: { type: 'string', enum: ['credentials', 'key', 'destination', 'exits', 'limits'] },
        status: { type: 'integer' },
        code: { type: 'string', description: 'the X-Portcullis-Error a node would answer with' },
        hint: { type: 'string', description: 'the body a node would answer with' },
      },
    }),
    credential: nullable({
      type: 'object',
      required: ['keyPrefix', 'source', 'country', 'city', 'state', 'asn', 'pool', 'session', 'sessionMinutes'],
      properties: {
        keyPrefix: { ...nullableString, description: 'the start of the key as read, never the whole secret' },
        source: { type: 'string', enum: ['proxy-authorization', 'authorization'] },
        country: nullableString,
        city: nullableString,
        state: nullableString,
        asn: nullableInteger,
        pool: nullableString,
        session: nullableString,
        sessionMinutes: nullableInteger,
      },
    }),
    key: nullable({
      type: 'object',
      required: ['id', 'name', 'status', 'lockedDown', 'expiresAt', 'allowedClientCidrs', 'pools', 'countries'],
      properties: {
        id: { type: 'string' },
        name: { type: 'string' },
        status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
        lockedDown: { type: 'boolean', description: "the team's lockdown covers the key" },
        expiresAt: nullableString,
        allowedClientCidrs: { type: 'array', items: { type: 'string' } },
        pools: { type: 'array', items: { type: 'string' } },
        countries: { type: 'array', items: { type: 'string' } },
      },
    }),
    limits: nullable({
      type: 'object',
      required: ['rateLimit', 'concurrency', 'monthlyQuotaBytes', 'monthlyUsedBytes', 'monthlyRemainingBytes', 'overQuota'],
      properties: {
        rateLimit: nullable({ type: 'object', additionalProperties: true }),
        concurrency: nullable({ type: 'object', additionalProperties: true }),
        monthlyQuotaBytes: nullableInteger,
        monthlyUsedBytes: { type: 'integer' },
        monthlyRemainingBytes: nullableInteger,
        overQuota: { type: 'boolean', description: "the key's or its team's monthly quota is used up" },
      },
    }),
    destination: nullable({
      type: 'object',
      required: ['host', 'port', 'connect', 'allowed'],
      properties: { host: { type: 'string' }, port: { type: 'integer' }, connect: { type: 'boolean' }, allowed: { type: 'boolean', description: 'the destination policy lets it through' } },
    }),
    exits: nullable({
      type: 'object',
      required: ['pools', 'matching', 'countries'],
      properties: {
        pools: { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'null' }], description: 'the pools considered; null: every pool' },
        matching: { type: 'integer', description: 'exits that match the pools and targeting' },
        countries: { type: 'array', items: { type: 'string' } },
      },
    }),
  },
} as const;

/** `POST /v1/teams/{team}/explain`: what a node would do with a request, without sending it. */
export function registerExplainRoutes(app: FastifyInstance, { db, allowPrivateDestinations }: ExplainRoutesOptions): void {
  app.post<{ Params: { team: string }; Body: ExplainRequest }>(
    '/v1/teams/:team/explain',
    {
      config: { scope: 'keys:read', errors: ['key_not_found'] },
      schema: {
        tags: ['keys'],
        summary: 'Explain what a proxy node would do with a request',
        description:
          "Runs a node's own credential parsing and decisions on the request described, without sending any traffic: the parsed credential and targeting, the key's standing and grants, limits and quota, the destination policy, the exits that match, and the exact refusal code and hint a node would answer with. Give the key's secret (`key`) or its id (`keyId`), or `Proxy-Authorization` in `headers`.",
        params: teamParams,
        body: explainBody,
        response: { 200: explainAnswer },
      },
    },
    async (request) => explainRequest(db, request.params.team, request.body, { allowPrivateDestinations }),
  );
}
