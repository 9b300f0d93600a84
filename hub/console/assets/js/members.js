// Members and their roles in the workspace (owners change them).
import { h } from './dom.js';

export async function members(ctx) {
  return h('section', { 'aria-labelledby': 'h-mem' }, h('h1', { id: 'h-mem' }, 'Members'),
    h('p', { class: 'empty' }, 'Workspace members arrive with the access API of this hub version; use pullgate-hub until then.'));
}
