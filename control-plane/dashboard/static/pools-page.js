// @ts-check
import { api } from './api.js';
import { dataTable, el, emptyState, errorBox, main } from './dom.js';

export async function renderPools() {
  const pools = dataTable('Pools', ['Pool', 'Country', 'Exits', 'Healthy exits']);
  const more = el('div', { class: 'more' }, el('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(el('h1', {}, 'Pools'), pools.box, more);
  try {
    const page = await api('GET', '/v1/pools?limit=500');
    for (const pool of page.data) {
      for (const country of pool.countries) {
        pools.body.append(
          pools.row({}, el('td', {}, pool.name), el('td', {}, `${country.name} (${country.country})`), el('td', {}, String(country.exits)), el('td', {}, country.healthy === null ? 'no node reporting' : String(country.healthy))),
        );
      }
    }
    more.replaceChildren(page.data.length === 0
        ? emptyState('No pools yet', 'A pool is a set of exits the proxy sends traffic through. The platform admin creates one with POST /v1/pools; the API reference shows how.', el('a', { href: '/reference' }, 'Open the API reference'))
        : '');
  } catch (error) {
    more.replaceChildren(errorBox(error));
  }
}
