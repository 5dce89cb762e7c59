import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = 'test/artifacts';
/** Screenshots of every dashboard page at each width, kept for a reviewer to look at. */
export const SCREENSHOTS = 'test-artifacts/screenshots';
/** The widths the dashboard must work at: a phone and a laptop. */
export const WIDTHS = [390, 1280] as const;

export function hasChromium(): boolean {
  return existsSync(CHROMIUM);
}

/** Debian's Chromium, headless, with the flags this sandboxed, offline machine needs. */
export async function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
}

export interface LayoutProblems {
  /** How far the page scrolls sideways (0 when it fits). */
  pageOverflow: number;
  /** Elements in the header or an open dialog that reach past the viewport's edges. */
  outside: string[];
}

/**
 * Runs in the page (a string, since the tests are compiled without the DOM's types):
 * measures sideways scroll and what in the header or an open dialog reaches past the viewport.
 */
const MEASURE_LAYOUT = `(() => {
  const scroller = document.scrollingElement;
  const outside = [];
  for (const element of document.querySelectorAll('header > *, dialog[open]')) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || getComputedStyle(element).display === 'none') continue;
    const past = box.left < 0 || box.right > innerWidth + 0.5 || (element.tagName === 'DIALOG' && (box.top < 0 || box.bottom > innerHeight + 0.5));
    if (past) outside.push(element.tagName.toLowerCase() + (element.id ? '#' + element.id : '') + ' at ' + Math.round(box.left) + '..' + Math.round(box.right) + ' x ' + Math.round(box.top) + '..' + Math.round(box.bottom));
  }
  return { pageOverflow: scroller.scrollWidth - scroller.clientWidth, outside };
})()`;

/** What does not fit the viewport: sideways page scroll, header parts and dialogs past its edges. */
export async function layoutProblems(page: Page): Promise<LayoutProblems> {
  return page.evaluate<LayoutProblems>(MEASURE_LAYOUT);
}

/** Collects what goes wrong in a page: script errors, console errors (CSP violations among them), unexpected dialogs. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('dialog', (dialog) => {
    problems.push(`unexpected browser dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return problems;
}
