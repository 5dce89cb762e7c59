/**
 * Headers that stop at this proxy: hop-by-hop headers (RFC 9110 §7.6.1), Host (rebuilt from
 * the target), Expect (the proxy answers 100-continue itself, once the request is
 * admitted), every `Proxy-*` header (credentials and targeting). Nothing is added that
 * reveals the client: no Via, no X-Forwarded-For.
 */
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect']);

function isStripped(lowerName: string, stripAuthorization: boolean, connectionTokens: Set<string> | undefined): boolean {
  if (NOT_FORWARDED.has(lowerName)) return true;
  if (lowerName.startsWith('proxy-')) return true;
  if (stripAuthorization && lowerName === 'authorization') return true;
  return connectionTokens !== undefined && connectionTokens.has(lowerName);
}

function connectionTokensOf(raw: string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) {
        const name = token.trim().toLowerCase();
        if (name !== '' && name !== 'close' && name !== 'keep-alive') (tokens ??= new Set()).add(name);
      }
    }
  }
  return tokens;
}

/**
 * The request headers to send upstream, as a flat [name, value, ...] list in the client's
 * order and case. Host is re-added first from the target, so a client cannot smuggle a
 * different one.
 */
export function forwardedRequestHeaders(raw: string[], hostHeader: string, stripAuthorization: boolean): string[] {
  const connectionTokens = connectionTokensOf(raw);
  const out: string[] = ['Host', hostHeader];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!isStripped(name.toLowerCase(), stripAuthorization, connectionTokens)) out.push(name, raw[i + 1]!);
  }
  return out;
}

/** The response headers to send back to the client. */
export function forwardedResponseHeaders(raw: string[]): string[] {
  const connectionTokens = connectionTokensOf(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    // The exit's marker says which residential exit carried the request: ours, not the client's.
    if (lower.startsWith('x-portcullis-exit')) continue;
    if (!isStripped(lower, false, connectionTokens)) out.push(name, raw[i + 1]!);
  }
  return out;
}
