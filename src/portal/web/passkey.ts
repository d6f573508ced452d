/**
 * Passkeys in the browser: sign-in (the button on the sign-in page) and enrollment (the form on /enroll),
 * with the WebAuthn JSON helpers of the platform (PublicKeyCredential.parse…FromJSON, toJSON). The personal
 * number typed at enrollment is sent once, in the body of a same-origin POST, and cleared from the form.
 */
const lang = document.documentElement.lang === 'en' ? 'en' : 'ja';
const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
const status = document.getElementById('passkey-status');

const TEXT = {
  ja: {
    unsupported: 'このブラウザーはパスキーに対応していません。',
    cancelled: 'パスキーの操作が取り消されました。もう一度お試しください。',
    working: 'パスキーを確認しています…',
  },
  en: {
    unsupported: 'This browser does not support passkeys.',
    cancelled: 'The passkey operation was cancelled. Please try again.',
    working: 'Checking your passkey…',
  },
}[lang];

function say(text: string, isError = false): void {
  if (!status) return;
  status.textContent = text;
  status.classList.toggle('error', isError);
}

async function post<T>(path: string, body: unknown): Promise<T> {
  const r = await fetch(path, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify(body) });
  const v = (await r.json().catch(() => ({}))) as T & { error?: string };
  if (!r.ok) throw new Error(v.error ?? `HTTP ${r.status}`);
  return v;
}

const supported = typeof PublicKeyCredential !== 'undefined' && typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function';

function failed(e: unknown): void {
  say(e instanceof DOMException && e.name === 'NotAllowedError' ? TEXT.cancelled : e instanceof Error ? e.message : String(e), true);
}

document.getElementById('passkey-signin')?.addEventListener('click', () => {
  if (!supported) return say(TEXT.unsupported, true);
  say(TEXT.working);
  void (async () => {
    const { ceremony, options } = await post<{ ceremony: string; options: PublicKeyCredentialRequestOptionsJSON }>('/webauthn/login/options', {});
    const cred = (await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) })) as PublicKeyCredential | null;
    if (!cred) throw new DOMException('no credential', 'NotAllowedError');
    await post('/webauthn/login/verify', { ceremony, response: cred.toJSON() });
    location.assign('/');
  })().catch(failed);
});

const form = document.getElementById('enroll-form') as HTMLFormElement | null;
form?.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (!supported) return say(TEXT.unsupported, true);
  const code = (form.elements.namedItem('enrollment_code') as HTMLInputElement).value;
  const numberField = form.elements.namedItem('personal_number') as HTMLInputElement;
  const personalNumber = numberField.value;
  numberField.value = '';
  say(TEXT.working);
  void (async () => {
    const { ceremony, options } = await post<{ ceremony: string; options: PublicKeyCredentialCreationOptionsJSON }>('/webauthn/register/options', { enrollmentCode: code, personalNumber });
    const cred = (await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })) as PublicKeyCredential | null;
    if (!cred) throw new DOMException('no credential', 'NotAllowedError');
    await post('/webauthn/register/verify', { ceremony, response: cred.toJSON() });
    location.assign('/');
  })().catch(failed);
});

export {};
