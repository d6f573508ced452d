/**
 * The words the records page shows, in Japanese and English: agencies, procedures, items, outcomes, proof
 * states. A name the page does not know is shown as it is (the legal-basis text still explains it).
 */
export type Lang = 'ja' | 'en';

type Dict = Record<string, { ja: string; en: string }>;

export const AGENCIES: Dict = {
  pension: { ja: '日本年金機構', en: 'Japan Pension Service' },
  tax: { ja: '市区町村 税務課', en: 'Municipal tax office' },
  employment: { ja: 'ハローワーク (雇用保険)', en: 'Hello Work (employment insurance)' },
  welfare: { ja: '市区町村 福祉事務所', en: 'Municipal welfare office' },
  disclosure: { ja: '情報提供等記録開示システム', en: 'Access record disclosure system' },
};

export const PROCEDURES: Dict = {
  'pension.eligibility': { ja: '年金給付の支給', en: 'Pension benefits' },
  'welfare.public-assistance': { ja: '生活保護の決定・実施', en: 'Public assistance' },
  'employment.benefit-adjustment': { ja: '雇用保険給付の調整', en: 'Adjustment of employment benefits' },
  'welfare.child-medical-subsidy': { ja: '子ども医療費助成', en: 'Child medical subsidy' },
  'disclosure.self-information': { ja: '自己情報表示', en: 'Showing you your own information' },
  '(unlisted)': { ja: '(表にない事務)', en: '(not in the table)' },
  'code.issue': { ja: '符号の取得', en: 'Issuing an agency code for you' },
  'records.read': { ja: '記録の閲覧', en: 'Reading your records' },
  'binding.report-wrong': { ja: '誤った紐付けの報告', en: 'Report of a wrong binding' },
};

export const ITEMS: Dict = {
  income: { ja: '所得情報', en: 'Income' },
  'pension-benefit': { ja: '年金給付の情報', en: 'Pension benefits' },
  'unemployment-benefit': { ja: '雇用保険給付の情報', en: 'Unemployment benefits' },
  'public-assistance': { ja: '生活保護の情報', en: 'Public assistance' },
  code: { ja: '符号', en: 'Agency code' },
  'access-records': { ja: 'アクセス記録', en: 'Access records' },
  'code-binding': { ja: '符号の紐付け', en: 'Code binding' },
  '(unlisted)': { ja: '(表にない情報)', en: '(not in the table)' },
};

export const OUTCOMES: Dict = {
  OUTCOME_ISSUED: { ja: '符号を発行', en: 'Code issued' },
  OUTCOME_PROVIDED: { ja: '情報を提供', en: 'Information provided' },
  OUTCOME_DENIED: { ja: '照会を拒否 (根拠なし)', en: 'Refused: no legal basis' },
  OUTCOME_NOT_FOUND: { ja: '該当する情報なし', en: 'No information held' },
  OUTCOME_FAILED: { ja: '提供できず (障害)', en: 'Not provided: a failure' },
  OUTCOME_RECORDS_READ: { ja: '記録を閲覧', en: 'Records read' },
  OUTCOME_BINDING_REPORTED: { ja: '誤った紐付けを報告', en: 'Wrong binding reported' },
  OUTCOME_NOT_RELEASED: { ja: '回答は届けられていません', en: 'The answer was not released' },
};

export const UI = {
  ja: {
    when: '日時',
    requester: '照会した機関',
    provider: '提供した機関',
    procedure: '事務',
    basis: '根拠',
    item: '情報',
    outcome: '結果',
    recordId: '記録番号',
    none: '—',
    verified: '検証済み',
    failed: '検証失敗',
    pending: '検証待ち (署名前の新しい記録です。少し後にもう一度確かめます)',
    cosigned: (w: string) => `立会人の連署: ${w}`,
    summary: (n: number, ok: number, bad: number, wait: number) => `${n}件の記録: 検証済み ${ok}件、検証失敗 ${bad}件、検証待ち ${wait}件`,
    empty: '記録はありません。',
    more: 'さらに表示',
    loading: '読み込み中…',
    loadFailed: '記録を読み込めませんでした。しばらくしてからもう一度お試しください。',
    notReleased: (id: string) => `記録 ${id} の照会は行われましたが、その回答は照会した機関に届けられていません。`,
    bindingReported: '照会した機関が、あなたの符号を誤って別の人の記録に紐付けていたと報告しました。',
    forked: (o: string) => `警告: 記録のログ「${o}」が、前回確かめた内容と矛盾しています (書き換えられた可能性があります)。この画面の表示にかかわらず、個人情報保護委員会に相談してください。`,
    rolledBack: (o: string) => `警告: 記録のログ「${o}」が、前回確かめたときより短くなっています (記録が消された可能性があります)。`,
    unverifiable: (o: string) => `警告: 前回確かめたログ「${o}」のチェックポイントを、今の鍵で検証できません。`,
    show: (agency: string, item: string) => `${agency}: ${item}を表示`,
    selfNotFound: (agency: string) => `${agency}は、あなたの情報を保有していません。`,
    selfFailed: '情報を取得できませんでした。しばらくしてからもう一度お試しください。',
    selfRecord: (id: string) => `この照会の記録: ${id}`,
    keyLog: 'ログの鍵',
    keyWitness: '立会人の鍵',
    fingerprint: '指紋 (SHA-256)',
    why: '理由',
  },
  en: {
    when: 'When',
    requester: 'Asked by',
    provider: 'Answered by',
    procedure: 'Procedure',
    basis: 'Legal basis',
    item: 'Information',
    outcome: 'Outcome',
    recordId: 'Record',
    none: '—',
    verified: 'Verified',
    failed: 'Verification failed',
    pending: 'Pending (a new record not yet in a signed checkpoint; checked again shortly)',
    cosigned: (w: string) => `Cosigned by witnesses: ${w}`,
    summary: (n: number, ok: number, bad: number, wait: number) => `${n} records: ${ok} verified, ${bad} failed, ${wait} pending`,
    empty: 'There are no records.',
    more: 'Show more',
    loading: 'Loading…',
    loadFailed: 'The records could not be loaded. Try again later.',
    notReleased: (id: string) => `The exchange of record ${id} was made, but its answer never reached the agency that asked.`,
    bindingReported: 'The agency reported that it had bound its code for you to another person’s file.',
    forked: (o: string) => `Warning: the log “${o}” contradicts what this browser verified on your last visit (it may have been rewritten). Whatever this page says, contact the Personal Information Protection Commission.`,
    rolledBack: (o: string) => `Warning: the log “${o}” is shorter than when this browser last verified it (records may have been removed).`,
    unverifiable: (o: string) => `Warning: the checkpoint of log “${o}” kept from your last visit does not verify under the current keys.`,
    show: (agency: string, item: string) => `${agency}: show ${item.toLowerCase()}`,
    selfNotFound: (agency: string) => `${agency} holds no information about you.`,
    selfFailed: 'The information could not be fetched. Try again later.',
    selfRecord: (id: string) => `Record of this query: ${id}`,
    keyLog: 'Log key',
    keyWitness: 'Witness key',
    fingerprint: 'Fingerprint (SHA-256)',
    why: 'Why',
  },
} as const;

export function label(d: Dict, key: string, lang: Lang): string {
  return d[key]?.[lang] ?? key;
}
