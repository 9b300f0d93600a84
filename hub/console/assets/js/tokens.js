// API tokens of the logged-in member: create (shown once), list, revoke.
import { h } from './dom.js';

export async function tokens(ctx) {
  return h('section', { 'aria-labelledby': 'h-tok' }, h('h1', { id: 'h-tok' }, 'API tokens'),
    h('p', { class: 'empty' }, 'API tokens arrive with the access API of this hub version; use pullgate-hub until then.'));
}
