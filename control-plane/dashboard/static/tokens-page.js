// @ts-check
/** A team's tokens: who can call the API for it, with what scopes; create and revoke them. */
import { PAGE_SIZE, api } from './api.js';
import { dataTable, el, emptyState, errorBox, formatTime, main } from './dom.js';
import { confirmRevokeToken, openCreateToken } from './token-dialogs.js';

/** @import { Me, Team, Token } from './api.js' */

/** @param {Team} team @param {Me} me */
export function renderTokens(team, me) {
  const tokens = dataTable('Tokens', ['Name', 'Prefix', 'Scopes', 'Status', 'Created', 'Last used', 'Expires', '']);
  const more = el('div', { class: 'more' });
  main.replaceChildren(
    el('h1', {}, `Tokens · ${team.name}`),
    el(
      'div',
      { class: 'toolbar' },
      el('p', { class: 'muted' }, 'Tokens let scripts and people call the API for this team. Each can do only what its scopes allow.'),
      el('span', { class: 'spacer' }),
      el('button', { type: 'button', id: 'create-token', onclick: () => openCreateToken(team, me.scopes, () => void load(null)) }, 'Create token'),
    ),
    tokens.box,
    more,
  );

  /** @param {Token} token */
  function tokenRow(token) {
    const own = me.token?.id === token.id;
    const actions = el('td', { class: 'actions-cell' });
    const row = tokens.row(
      { 'data-token-id': token.id },
      el('td', { class: 'name' }, token.name, own ? el('span', { class: 'muted' }, ' (you)') : null),
      el('td', {}, token.prefix === null ? '—' : el('code', {}, token.prefix)),
      el('td', {}, el('div', { class: 'scope-list' }, ...token.scopes.map((scope) => el('code', {}, scope)))),
      el('td', { class: `status status-${token.status}` }, token.status),
      el('td', {}, formatTime(token.createdAt)),
      el('td', {}, formatTime(token.lastUsedAt)),
      el('td', {}, token.expiresAt === null ? 'never' : formatTime(token.expiresAt)),
      actions,
    );
    if (token.status === 'active') {
      actions.append(
        el(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'aria-label': `Revoke token ${token.name}`,
            onclick: () =>
              confirmRevokeToken(team, token, own, (revoked) => {
                // The session's own token no longer works: starting again lands on sign-in, saying why.
                if (own) location.reload();
                else row.replaceWith(tokenRow(revoked));
              }),
          },
          'Revoke',
        ),
      );
    }
    return row;
  }

  /** @param {string | null} cursor null: from the start */
  async function load(cursor) {
    if (cursor === null) tokens.body.replaceChildren();
    more.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    try {
      const page = await api('GET', `/v1/teams/${encodeURIComponent(team.id)}/tokens?limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      tokens.body.append(...page.data.map(tokenRow));
      more.replaceChildren(page.nextCursor ? el('button', { type: 'button', class: 'secondary', onclick: () => load(page.nextCursor) }, 'Load more tokens') : '');
      if (cursor === null && page.data.length === 0) {
        more.replaceChildren(
          emptyState('No tokens yet', 'Create a token for each script or person that calls the API for this team, with only the scopes it needs.', el('button', { type: 'button', onclick: () => openCreateToken(team, me.scopes, () => void load(null)) }, 'Create your first token')),
        );
      }
    } catch (error) {
      more.replaceChildren(errorBox(error));
    }
  }
  void load(null);
}
