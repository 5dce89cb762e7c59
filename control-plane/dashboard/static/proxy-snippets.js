// @ts-check
/**
 * Ready-to-paste client code for a key, pointed at this deployment's proxy: curl, Python
 * requests and Playwright, the clients most scrapers start from.
 */

/** Where the proxy is when the control plane was not told (PUBLIC_PROXY_URL unset). */
const PLACEHOLDER_PROXY = 'http://PROXY_HOST:8000';

/**
 * @param {string | null} proxyUrl `http://host:port`, from /v1/me
 * @param {string} secret the key
 * @returns {{ label: string, code: string }[]}
 */
export function proxySnippets(proxyUrl, secret) {
  const proxy = new URL(proxyUrl ?? PLACEHOLDER_PROXY);
  const server = `${proxy.protocol}//${proxy.host}`;
  const withCredentials = `${proxy.protocol}//user:${secret}@${proxy.host}`;
  return [
    { label: 'curl', code: `curl -x ${withCredentials} https://example.com/` },
    {
      label: 'Python requests',
      code: [
        'import requests',
        '',
        `proxy = "${withCredentials}"`,
        'response = requests.get("https://example.com/", proxies={"http": proxy, "https": proxy})',
        'print(response.status_code)',
      ].join('\n'),
    },
    {
      label: 'Playwright (Node.js)',
      code: [
        "import { chromium } from 'playwright';",
        '',
        'const browser = await chromium.launch({',
        `  proxy: { server: '${server}', username: 'user', password: '${secret}' },`,
        '});',
        'const page = await browser.newPage();',
        "await page.goto('https://example.com/');",
      ].join('\n'),
    },
  ];
}

/** @param {string | null} proxyUrl */
export function snippetNote(proxyUrl) {
  return proxyUrl === null
    ? 'Replace PROXY_HOST:8000 with your proxy address (set PUBLIC_PROXY_URL on the control plane to fill it in here). Add -country-de to the user name to pick a country.'
    : 'Add -country-de to the user name to pick a country, or -session-abc to keep the same exit.';
}
