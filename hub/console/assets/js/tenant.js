// Sign in with an Akash account (hubs that run with --akash-tenants): the
// hub issues a challenge, the account's key signs it as Cosmos wallets
// sign arbitrary data (ADR-036), and the hub answers with an API token of
// the account's workspace. The page exchanges that token for a session at
// once, exactly as a pasted token, and does not keep it.
//
// With Keplr the page asks the wallet to sign; any other wallet (or a
// Ledger, or the CLI) signs the shown message, and its JSON answer is
// pasted.
import { api } from './api.js';
import { h, clear, field, button } from './dom.js';

const chainID = 'akashnet-2'; // selects the key in the wallet; the signed document has no chain id

// akashSection is the login page's Akash part. signIn(token) opens the
// session (and shows the console); fail(err) reports an error.
export function akashSection(signIn, fail) {
  const addr = field('Akash account address', { name: 'akash-address', autocomplete: 'off', spellcheck: 'false', placeholder: 'akash1…' });
  const ws = field('Workspace name (first login only)', { name: 'akash-workspace', autocomplete: 'off', spellcheck: 'false' },
    'The workspace the first login creates for the account. Default: akash- and the first 10 characters of the address.');
  const manual = h('div', { class: 'akash-manual' });

  const address = () => {
    const a = addr.input.value.trim();
    if (!/^akash1[02-9ac-hj-np-z]{38}$/.test(a)) throw new Error('Enter the account address: akash1 and 38 more characters.');
    return a;
  };
  const challenge = (a) => api('POST', '/tenant/challenge', { address: a });
  const finish = async (c, answer) => {
    const body = { challenge: c.id, pub_key: answer.pub_key, signature: answer.signature };
    const w = ws.input.value.trim();
    if (w) body.workspace = w;
    const l = await api('POST', '/tenant/login', body);
    clear(manual);
    await signIn(l.token);
  };

  const keplr = button('Sign with Keplr', async () => {
    try {
      const a = address();
      if (!window.keplr) throw new Error('Keplr was not found in this browser: sign the message with your wallet instead.');
      await window.keplr.enable(chainID);
      const c = await challenge(a);
      const answer = await window.keplr.signArbitrary(chainID, a, c.message);
      await finish(c, answer);
    } catch (e) { fail(e); }
  }, 'primary');
  keplr.hidden = !window.keplr;

  const showMessage = button('Show the message to sign', async () => {
    try {
      const c = await challenge(address());
      const answer = field('Wallet answer (JSON)', { tag: 'textarea', name: 'akash-answer', rows: 4, autocomplete: 'off', spellcheck: 'false' },
        'What the wallet\'s signArbitrary returns: {"pub_key":{"type":"tendermint/PubKeySecp256k1","value":"…"},"signature":"…"}. One attempt per message.');
      const submit = button('Log in with the signature', async () => {
        let parsed;
        try { parsed = JSON.parse(answer.input.value); } catch { fail(new Error('The wallet answer is not JSON: paste it as the wallet returned it.')); return; }
        answer.input.value = '';
        try { await finish(c, parsed || {}); } catch (e) { clear(manual); fail(e); }
      }, 'primary');
      clear(manual).appendChild(h('div', {},
        h('p', {}, 'Sign this message with the account\'s key (Keplr: signArbitrary("' + chainID + '", address, message); CLI: pullgate-hub tenant login). It expires at ' + c.expires_at + '.'),
        h('pre', { class: 'akash-message', 'aria-label': 'Message to sign' }, c.message),
        h('details', {}, h('summary', {}, 'The exact document the wallet signs'), h('pre', {}, c.sign_doc)),
        answer, submit));
      answer.input.focus();
    } catch (e) { fail(e); }
  });

  return h('section', { class: 'card narrow akash', 'aria-labelledby': 'akash-h' },
    h('h2', { id: 'akash-h' }, 'Sign in with an Akash account'),
    h('p', {}, 'Tenants of an Akash provider that runs this hub get a workspace of their own by signing a login message with their account\'s key.'),
    addr, ws, h('div', { class: 'actions' }, keplr, showMessage), manual);
}
