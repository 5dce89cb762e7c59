// @ts-check
/**
 * The Portcullis dashboard: a small single-page app over the public /v1 API. Everything a
 * user typed is rendered with textContent (never as HTML), lists load page by page with
 * keyset cursors, and every API error is shown as a readable message.
 *
 * This entry module owns the session, the sign-in page, the header and routing. The pages
 * get the team they show as an argument, so the session is not shared state.
 */
import { renderActivity } from './activity-page.js';
import { ApiError, api, describe, forgetToken, hasToken, saveToken, whenTokenRejected } from './api.js';
import { el, errorBox, main } from './dom.js';
import { renderKeys } from './keys-page.js';
import { renderPools } from './pools-page.js';
import { renderTeams } from './teams-page.js';
import { renderTokens } from './tokens-page.js';
import { renderUsage } from './usage-page.js';

/** @import { Me, Team } from './api.js' */

/** @type {{ me: Me | null, team: Team | null }} */
const session = { me: null, team: null };

/** @param {string} [message] */
function signOut(message) {
  forgetToken();
  session.me = null;
  session.team = null;
  location.hash = '#/keys';
  renderSignIn(message);
}

/** @param {string} [message] */
function renderSignIn(message) {
  setChrome(false);
  const input = /** @type {HTMLInputElement} */ (el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' }));
  const problem = el('div', { 'aria-live': 'polite' }, message ? el('p', { class: 'error', role: 'alert' }, message) : null);
  const form = el(
    'form',
    {
      class: 'stack',
      onsubmit: async (event) => {
        event.preventDefault();
        problem.replaceChildren();
        saveToken(input.value.trim());
        try {
          await start();
        } catch (error) {
          forgetToken();
          problem.replaceChildren(error instanceof ApiError && error.status === 401 ? errorBox(new Error('That token was not accepted. Paste an admin or team token.')) : errorBox(error));
        }
      },
    },
    el('h1', {}, 'Sign in'),
    el('label', { for: 'token' }, 'Admin or team token', input),
    problem,
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Sign in')),
  );
  main.replaceChildren(el('section', { class: 'signin' }, form));
  input.focus();
}

/**
 * Which sections the signed-in token may open: Teams for the platform admin, Tokens for a
 * token that may manage tokens.
 * @param {string} view
 */
function mayOpen(view) {
  if (session.me === null) return false;
  if (view === 'teams') return session.me.kind === 'admin';
  if (view === 'tokens') return session.me.scopes.includes('tokens:write');
  return true;
}

/** @param {boolean} signedIn */
function setChrome(signedIn) {
  /** @type {HTMLElement} */ (document.getElementById('nav')).hidden = !signedIn;
  for (const link of document.querySelectorAll('nav a')) {
    if (link instanceof HTMLElement) link.hidden = !mayOpen(link.dataset.view ?? '');
  }
  /** @type {HTMLElement} */ (document.getElementById('sign-out')).hidden = !signedIn;
  const who = /** @type {HTMLElement} */ (document.getElementById('who'));
  who.textContent = !signedIn || session.me === null ? '' : session.me.kind === 'admin' ? `Platform admin${session.team ? ` · ${session.team.name}` : ''}` : `Team ${session.team?.name ?? ''}`;
  // Cut short on a phone: the whole text stays one hover or long-press away.
  who.title = who.textContent;
}

async function start() {
  session.me = /** @type {Me} */ (await api('GET', '/v1/me'));
  if (session.me.kind === 'team') session.team = session.me.team;
  route();
}

function route() {
  if (session.me === null) return renderSignIn();
  const [, view = 'keys', argument] = location.hash.split('/');
  for (const link of document.querySelectorAll('nav a')) {
    if (link instanceof HTMLElement && link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  setChrome(true);
  // Pools are the platform's, not a team's: an admin sees them before choosing a team.
  if (view === 'pools') return renderPools();
  if (view === 'teams' && mayOpen('teams')) return renderTeams(session.team, (team) => chooseTeam(team, 'keys'));
  if (session.team === null) return renderTeams(null, (team) => chooseTeam(team, view));
  if (view === 'tokens' && mayOpen('tokens')) return renderTokens(session.team, session.me);
  if (view === 'activity') return renderActivity(session.team);
  if (view === 'usage') return renderUsage(session.team, argument);
  const proxyUrl = session.me.proxyUrl ?? null;
  if (view === 'revocation' && argument !== undefined) return renderKeys(session.team, proxyUrl, session.me.scopes, argument);
  return renderKeys(session.team, proxyUrl, session.me.scopes);
}

/**
 * Switches the dashboard to `team`, staying signed in.
 * @param {Team} team
 * @param {string} next the section to open in it
 */
function chooseTeam(team, next) {
  session.team = team;
  const view = ['activity', 'usage', 'tokens'].includes(next) ? next : 'keys';
  if (location.hash === `#/${view}`) route();
  else location.hash = `#/${view}`;
}

/** @type {HTMLElement} */ (document.getElementById('sign-out')).addEventListener('click', () => signOut());
whenTokenRejected(() => signOut('Your session ended: the token was not accepted. Sign in again.'));
window.addEventListener('hashchange', () => {
  if (session.me !== null) route();
});
if (!hasToken()) renderSignIn();
else start().catch((error) => renderSignIn(describe(error)));
