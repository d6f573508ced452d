/**
 * The portal's HTML, rendered on the server with every value escaped: no inline script or style (the CSP
 * allows only the portal's own files), one thing per page, Japanese by default with an English switch
 * (`?lang=en`, kept in a cookie). The records page is a shell: /static/app.js fills it and verifies each
 * record in the browser.
 */
export type Lang = 'ja' | 'en';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const T = {
  ja: {
    service: '情報提供等記録の開示',
    other: 'English',
    otherLang: 'en',
    skip: '本文へ移動',
    signInTitle: 'サインイン',
    signInLead: 'あなたの個人番号を使って、行政機関の間でやり取りされたあなたの情報の記録を確認できます。記録が改ざんされていないことは、このブラウザーの中で確かめます。',
    passkeyHeading: 'パスキーでサインイン',
    passkeyButton: 'パスキーでサインイン',
    enrollLink: 'はじめての方: 窓口で受け取った登録コードでパスキーを登録する',
    devHeading: '開発用サインイン',
    devNote: '開発・試験専用です。本番環境にはこのフォームはありません。',
    numberLabel: '個人番号 (12桁)',
    signIn: 'サインイン',
    recordsTitle: 'あなたの情報の記録',
    recordsLead: '行政機関があなたの情報を照会・提供した記録です。新しいものから順に表示します。各記録の証明はこのブラウザーで検証します。',
    download: '記録と証明をダウンロード (JSON Lines)',
    selfHeading: 'あなたの情報 (自己情報表示)',
    selfLead: '行政機関があなたについて保有している情報を表示します。表示のための照会も記録され、上の一覧に加わります。',
    keysHeading: '検証に使う鍵',
    keysLead: '次の鍵の指紋を、公表されている値と比べてください。',
    signOut: 'サインアウト',
    enrollTitle: 'パスキーの登録',
    enrollLead: '窓口で受け取った登録コードと個人番号を入力してください。個人番号はこの登録のときに一度だけ使い、保存しません。',
    enrollCodeLabel: '登録コード',
    enrollButton: 'パスキーを登録する',
    back: 'サインインへ戻る',
    errorTitle: 'エラー',
  },
  en: {
    service: 'Disclosure of access records',
    other: '日本語',
    otherLang: 'ja',
    skip: 'Skip to content',
    signInTitle: 'Sign in',
    signInLead: 'See the records of every exchange of your information between public agencies. That no record was altered is checked here, in your browser.',
    passkeyHeading: 'Sign in with a passkey',
    passkeyButton: 'Sign in with a passkey',
    enrollLink: 'First time: register a passkey with the enrollment code you received at the counter',
    devHeading: 'Development sign-in',
    devNote: 'For development and tests only. Production has no such form.',
    numberLabel: 'Personal number (12 digits)',
    signIn: 'Sign in',
    recordsTitle: 'Records of your information',
    recordsLead: 'Every time an agency asked for or provided information about you, newest first. Each record’s proof is verified in this browser.',
    download: 'Download my records and proofs (JSON Lines)',
    selfHeading: 'Your information held by agencies',
    selfLead: 'Shows what an agency holds about you. Each such query is itself recorded and appears in the list above.',
    keysHeading: 'Keys used for verification',
    keysLead: 'Compare these fingerprints with the published ones.',
    signOut: 'Sign out',
    enrollTitle: 'Register a passkey',
    enrollLead: 'Enter the enrollment code you received at the counter and your personal number. The number is used once, for this registration, and not kept.',
    enrollCodeLabel: 'Enrollment code',
    enrollButton: 'Register a passkey',
    back: 'Back to sign-in',
    errorTitle: 'Error',
  },
} as const;

export type Texts = (typeof T)[Lang];
export const texts = (lang: Lang): Texts => T[lang];

function layout(lang: Lang, title: string, body: string, o: { script?: string; csrf?: string } = {}): string {
  const t = T[lang];
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — ${esc(t.service)}</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
${o.csrf ? `<meta name="csrf-token" content="${esc(o.csrf)}">\n` : ''}${o.script ? `<script type="module" src="/static/${esc(o.script)}"></script>\n` : ''}</head>
<body>
<a class="skip" href="#main">${esc(t.skip)}</a>
<header class="site">
<p class="service">${esc(t.service)}</p>
<nav aria-label="${lang === 'ja' ? '言語' : 'Language'}"><a href="?lang=${t.otherLang}" lang="${t.otherLang}" hreflang="${t.otherLang}">${esc(t.other)}</a></nav>
</header>
<main id="main" tabindex="-1">
${body}
</main>
</body>
</html>
`;
}

export interface SignInPageOptions {
  readonly lang: Lang;
  readonly csrf: string;
  readonly devSignIn: boolean;
  readonly passkeys: boolean;
  /** A message shown above the forms (already in the page's language). */
  readonly error?: string;
}

export function signInPage(o: SignInPageOptions): string {
  const t = T[o.lang];
  const error = o.error ? `<div class="error" role="alert" id="signin-error"><p>${esc(o.error)}</p></div>\n` : '';
  const passkey = o.passkeys
    ? `<section aria-labelledby="passkey-h">
<h2 id="passkey-h">${esc(t.passkeyHeading)}</h2>
<p><button type="button" id="passkey-signin" class="primary">${esc(t.passkeyButton)}</button></p>
<p id="passkey-status" role="status"></p>
<p><a href="/enroll">${esc(t.enrollLink)}</a></p>
</section>
`
    : '';
  const dev = o.devSignIn
    ? `<section aria-labelledby="dev-h" class="dev">
<h2 id="dev-h">${esc(t.devHeading)}</h2>
<p>${esc(t.devNote)}</p>
<form method="post" action="/signin/dev" autocomplete="off">
<input type="hidden" name="csrf" value="${esc(o.csrf)}">
<label for="personal_number">${esc(t.numberLabel)}</label>
<input id="personal_number" name="personal_number" type="password" inputmode="numeric" pattern="[0-9]{12}" maxlength="12" required autocomplete="off" spellcheck="false">
<button type="submit" class="primary">${esc(t.signIn)}</button>
</form>
</section>
`
    : '';
  return layout(o.lang, t.signInTitle, `<h1>${esc(t.signInTitle)}</h1>\n<p>${esc(t.signInLead)}</p>\n${error}${passkey}${dev}`, {
    csrf: o.csrf,
    ...(o.passkeys ? { script: 'passkey.js' } : {}),
  });
}

export function enrollPage(o: { lang: Lang; csrf: string; error?: string }): string {
  const t = T[o.lang];
  const error = o.error ? `<div class="error" role="alert"><p>${esc(o.error)}</p></div>\n` : '';
  return layout(
    o.lang,
    t.enrollTitle,
    `<h1>${esc(t.enrollTitle)}</h1>
<p>${esc(t.enrollLead)}</p>
${error}<form id="enroll-form" autocomplete="off">
<label for="enrollment_code">${esc(t.enrollCodeLabel)}</label>
<input id="enrollment_code" name="enrollment_code" type="text" required autocomplete="off" spellcheck="false" autocapitalize="characters">
<label for="personal_number">${esc(t.numberLabel)}</label>
<input id="personal_number" name="personal_number" type="password" inputmode="numeric" pattern="[0-9]{12}" maxlength="12" required autocomplete="off">
<button type="submit" class="primary">${esc(t.enrollButton)}</button>
</form>
<p id="passkey-status" role="status"></p>
<p><a href="/">${esc(t.back)}</a></p>`,
    { csrf: o.csrf, script: 'passkey.js' },
  );
}

export function recordsPage(o: { lang: Lang; csrf: string }): string {
  const t = T[o.lang];
  return layout(
    o.lang,
    t.recordsTitle,
    `<h1>${esc(t.recordsTitle)}</h1>
<p>${esc(t.recordsLead)}</p>
<div id="log-warning" class="warning" role="alert" hidden></div>
<p id="summary" role="status"></p>
<ol id="records" class="records"></ol>
<p><button type="button" id="more" hidden></button></p>
<p><a id="download" href="/download" download="access-records.jsonl">${esc(t.download)}</a></p>
<section aria-labelledby="self-h">
<h2 id="self-h">${esc(t.selfHeading)}</h2>
<p>${esc(t.selfLead)}</p>
<ul id="self-information" class="self"></ul>
<div id="self-result" role="status"></div>
</section>
<section aria-labelledby="keys-h">
<h2 id="keys-h">${esc(t.keysHeading)}</h2>
<p>${esc(t.keysLead)}</p>
<ul id="keys" class="keys"></ul>
</section>
<form method="post" action="/signout">
<input type="hidden" name="csrf" value="${esc(o.csrf)}">
<button type="submit">${esc(t.signOut)}</button>
</form>`,
    { csrf: o.csrf, script: 'app.js' },
  );
}

export function errorPage(lang: Lang, message: string): string {
  const t = T[lang];
  return layout(lang, t.errorTitle, `<h1>${esc(t.errorTitle)}</h1>\n<p>${esc(message)}</p>\n<p><a href="/">${esc(t.back)}</a></p>`);
}
