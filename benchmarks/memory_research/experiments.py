#!/usr/bin/env python3
"""Sleuth research: similar-incident retrieval + category vote on the Azure postmortem corpus.

Self-contained.  Leave-one-out (LOO) over the 242 labelled records:
  * early  = accuracy of the category vote, query = title, summary, service_name, impact symptom, operation
  * related = precision@5 of same-category neighbours, query = whole record minus labels
             (variant A 'strict': no root cause.* / mitigation.* fields at all;
              variant B 'rcfree': + root cause.details, mitigation.details, mitigation.troubleshooting free text)
A record's own labels are never used for its own query; supervised parts are refit on the other 241 records
per fold.  Unsupervised statistics (IDF, vocabulary) are fitted on all texts (label-free; also
reported with per-fold IDF for the chosen method).

Usage: python3 experiments.py [--quick]
"""
import glob, json, re, sys, time
from collections import Counter
import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer, HashingVectorizer, CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

import os
CORPUS = os.environ.get('SLEUTH_CORPUS', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'corpora', 'postmortems-azure'))
CATS = ['code_change', 'config_change', 'traffic_surge', 'infrastructure', 'capacity',
        'dependency', 'operation_error', 'unknown']
SW_L3 = {'others', 'exception handling', 'incompatibility', 'resource race', 'timing bug', 'space'}


# ----------------------------------------------------------------------------------------- data
def map_label(l):
    """One root-cause label dict -> (category, rule).  README rules first; 'unmapped:' = our choice."""
    l1 = (l.get('layer-1') or '').strip().lower()
    l2 = (l.get('layer-2') or '').strip().lower()
    l3 = (l.get('layer-3') or '').strip().lower()
    if l1 == 'unknown':
        return 'unknown', 'readme'
    if l3 == 'config':
        return 'config_change', 'readme'
    if l3 == 'code change':
        return 'code_change', 'readme'
    if l3 == 'payload flood' or l2 == 'excessive flow':
        return 'traffic_surge', 'readme'
    if l2 == 'hardware failures':
        return 'infrastructure', 'readme'
    if l2 == 'insufficient resource':
        return 'capacity', 'readme'
    if l2 == 'third-party failures':
        return 'dependency', 'readme'
    if l2 == 'component removal':
        return 'operation_error', 'readme'
    if l2 in ('software bugs', 'softwares bugs', 'software failures'):
        if l3 in SW_L3 or l3 == '':
            return 'code_change', ('readme' if l2 == 'software bugs' else 'typo:' + l2)
        return 'code_change', 'unmapped:software bugs/' + l3
    return 'unknown', 'unmapped:%s/%s' % (l1, l2 or '-')


def load():
    recs = {}
    for f in sorted(glob.glob(CORPUS + '/*.json')):
        recs.update(json.load(open(f)))
    out = []
    for rid in sorted(recs):
        r = recs[rid]
        cats, rules = [], []
        for l in (r['root cause'].get('label') or []):
            c, rule = map_label(l)
            rules.append(rule)
            if c not in cats:
                cats.append(c)
        svc = r.get('service_name', r.get('service name')) or []
        if isinstance(svc, str):
            svc = [svc]
        out.append(dict(id=rid, r=r, cats=cats, svc=svc, rules=rules))
    return out


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def flat(v):
    """Any JSON value -> plain text (dict keys dropped, values kept)."""
    if v is None or isinstance(v, bool):
        return ''
    if isinstance(v, dict):
        return ' '.join(flat(x) for x in v.values())
    if isinstance(v, list):
        return ' '.join(flat(x) for x in v)
    return str(v)


def tagify(prefix, values):
    """Structured values as whole tokens, e.g. svc_azure_sql_database (exact match on a metadata value)."""
    return ' '.join(prefix + re.sub(r'\W+', '_', str(v).strip().lower()).strip('_') for v in values if str(v).strip())


def early_fields(d):
    r = d['r']
    return {'title': r.get('title') or '', 'summary': r.get('summary') or '',
            'service': ' '.join(d['svc']), 'symptom': ' '.join(as_list(r.get('impact symptom'))),
            'operation': ' '.join(as_list(r.get('operation'))),
            'tags': tagify('svc_', d['svc']) + ' ' + tagify('sym_', as_list(r.get('impact symptom'))) + ' ' +
                    tagify('op_', as_list(r.get('operation')))}


def full_fields(d, with_rc_text=False):
    r = d['r']
    f = early_fields(d)
    f['details'] = r.get('details') or ''
    f['manifestation'] = flat(r.get('manifestation'))
    f['propagation'] = flat(r.get('propagation pass'))
    if with_rc_text:
        m = r.get('mitigation') or {}
        f['rc_text'] = ' '.join([flat(r['root cause'].get('details')), flat(m.get('details')),
                                 flat(m.get('troubleshooting'))])
    return f


def Ymat(data):
    Y = np.zeros((len(data), len(CATS)))
    for i, d in enumerate(data):
        for c in d['cats']:
            Y[i, CATS.index(c)] = 1
    return Y


# -------------------------------------------------------------------------------- representations
def word_tfidf(texts, sublinear=True, ngram=(1, 1), min_df=1, use_idf=True):
    v = TfidfVectorizer(sublinear_tf=sublinear, ngram_range=ngram, min_df=min_df, use_idf=use_idf,
                        stop_words='english', token_pattern=r'(?u)\b[a-zA-Z][\w\-]+\b')
    return v.fit_transform(texts)


def char_tfidf(texts, ngram=(3, 5), sublinear=True, use_idf=True):
    v = TfidfVectorizer(analyzer='char_wb', ngram_range=ngram, sublinear_tf=sublinear, use_idf=use_idf,
                        lowercase=True, min_df=1)
    return v.fit_transform(texts)


def hashed(texts, n_features=2 ** 18, alternate_sign=False):
    """Offline, stateless embedding: hashed word uni+bigrams and char_wb 3-5 grams, sublinear TF, L2.
    No IDF (an IDF table is corpus state that a fixed Chroma embedding function would not have)."""
    hw = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), stop_words='english',
                           alternate_sign=alternate_sign, norm=None)
    hc = HashingVectorizer(n_features=n_features, analyzer='char_wb', ngram_range=(3, 5),
                           alternate_sign=alternate_sign, norm=None)
    W = hw.transform(texts); W.data = np.sign(W.data) * (1 + np.log(np.abs(W.data)))
    C = hc.transform(texts); C.data = np.sign(C.data) * (1 + np.log(np.abs(C.data)))
    return normalize(sp.hstack([normalize(W), normalize(C)]).tocsr())


def bm25(texts, k1=1.2, b=0.75):
    cv = CountVectorizer(stop_words='english', token_pattern=r'(?u)\b[a-zA-Z][\w\-]+\b')
    X = cv.fit_transform(texts).tocsr().astype(float)
    n = X.shape[0]
    df = np.bincount(X.indices, minlength=X.shape[1])
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    dl = np.asarray(X.sum(1)).ravel(); avg = dl.mean()
    X = X.tocoo()
    tf = X.data * (k1 + 1) / (X.data + k1 * (1 - b + b * dl[X.row] / avg))
    D = sp.csr_matrix((tf * idf[X.col], (X.row, X.col)), shape=X.shape)
    Q = (cv.transform(texts) > 0).astype(float)  # binary query
    return Q, D


def combo(fields_list, weights, kind='word+char'):
    """Field-weighted representation: one L2-normalised block per field (word TF-IDF [+ char TF-IDF]),
    blocks scaled by sqrt(weight) so that cosine = weighted sum of per-field cosines / sum(weights)."""
    blocks = []
    for name, w in weights.items():
        if w <= 0:
            continue
        texts = [f.get(name, '') for f in fields_list]
        if not any(t.strip() for t in texts):
            continue
        if kind in ('word', 'word+char'):
            blocks.append(np.sqrt(w if kind == 'word' else w / 2) * word_tfidf(texts, ngram=(1, 2)))
        if kind in ('char', 'word+char'):
            blocks.append(np.sqrt(w if kind == 'char' else w / 2) * char_tfidf(texts))
    return normalize(sp.hstack(blocks).tocsr())


def concat_text(fields_list, names):
    return [' . '.join(f.get(n, '') for n in names) for f in fields_list]


def cos(X):
    S = (X @ X.T).toarray() if sp.issparse(X) else X @ X.T
    np.fill_diagonal(S, -np.inf)
    return S


# --------------------------------------------------------------------------------------- voting
def knn_scores(S, Y, k=10, power=1.0, alpha=0.0, split=True):
    """LOO weighted kNN vote.  S: n x n similarity with -inf diagonal.  Returns n x C scores.
    vote_c = sum_{j in top-k} max(s_qj,0)^power * y_jc (/|y_j| if split), divided by prior_c^alpha,
    prior_c = share of the OTHER records carrying c (the index at query time)."""
    n, C = Y.shape
    Yw = Y / Y.sum(1, keepdims=True) if split else Y
    out = np.zeros((n, C))
    tot = Yw.sum(0)
    for q in range(n):
        idx = np.argpartition(-S[q], k)[:k]
        w = np.maximum(S[q, idx], 0) ** power
        v = w @ Yw[idx]
        prior = (tot - Yw[q]) / (n - 1)
        out[q] = v / np.maximum(prior, 1e-3) ** alpha
    return out


def loo_logreg(X, Y, C=1.0, balanced=False):
    """LOO multinomial logistic regression on the other n-1 records (multi-label rows replicated with
    weight 1/|labels|).  Returns n x C probabilities."""
    n = X.shape[0]
    rows, labs, wts = [], [], []
    for i in range(n):
        cs = np.flatnonzero(Y[i])
        for c in cs:
            rows.append(i); labs.append(c); wts.append(1 / len(cs))
    rows, labs, wts = map(np.array, (rows, labs, wts))
    P = np.zeros(Y.shape)
    Xr = X[rows]
    for q in range(n):
        m = rows != q
        cw = None
        if balanced:
            cnt = np.bincount(labs[m], weights=wts[m], minlength=Y.shape[1])
            cw = {c: cnt.sum() / (np.count_nonzero(cnt) * cnt[c]) for c in range(Y.shape[1]) if cnt[c] > 0}
        clf = LogisticRegression(C=C, max_iter=2000, class_weight=cw)
        clf.fit(Xr[m], labs[m], sample_weight=wts[m])
        P[q, clf.classes_] = clf.predict_proba(X[q])[0]
    return P


def loo_centroid(X, Y, alpha=0.0):
    """LOO per-category centroid (Rocchio) similarity: cos(q, mean of L2-normalised docs of category c,
    query removed)."""
    X = normalize(X)
    Yw = Y / Y.sum(1, keepdims=True)
    Ssum = (X @ (X.T @ sp.csr_matrix(Yw))).toarray() if sp.issparse(X) else X @ (X.T @ Yw)
    # remove self contribution: q.q * yw_q = 1 * yw_q
    Ssum = Ssum - Yw
    cnt = Yw.sum(0)[None, :] - Yw
    G = np.asarray((sp.csr_matrix(Yw).T @ X).todense()) if sp.issparse(X) else Yw.T @ X
    norms2 = (G ** 2).sum(1)[None, :] - 2 * Ssum * 0  # placeholder, recomputed below exactly
    out = np.zeros(Y.shape)
    for q in range(X.shape[0]):
        xq = X[q].toarray().ravel() if sp.issparse(X) else X[q]
        Gq = G - np.outer(Yw[q], xq)
        nrm = np.linalg.norm(Gq, axis=1) + 1e-12
        out[q] = (Gq @ xq) / nrm
    return out


def norm_rows(P):
    P = np.maximum(P, 0)
    s = P.sum(1, keepdims=True)
    return np.where(s > 0, P / np.maximum(s, 1e-12), 1.0 / P.shape[1])


# ---------------------------------------------------------------------------------------- metrics
def accuracy(scores, Y):
    return float(np.mean(Y[np.arange(len(Y)), scores.argmax(1)] > 0))


def p_at_k(S, Y, k=5, P=None, lam=0.0):
    """precision@k; optional re-rank: score_qj = s_qj + lam * sum_c P_qc * y_jc / |y_j| ... (P = query's
    predicted category distribution, computed without the query's labels)."""
    M = (Y @ Y.T) > 0
    R = S.copy()
    if P is not None and lam:
        R = R + lam * (P @ (Y / Y.sum(1, keepdims=True)).T)
        np.fill_diagonal(R, -np.inf)
    hits = []
    for q in range(len(Y)):
        idx = np.argsort(-R[q])[:k]
        hits.append(M[q, idx].mean())
    return float(np.mean(hits))


def majority(Y):
    c = Y.sum(0).argmax()
    return CATS[c], float(Y[:, c].mean())


def loo_kridge(X, Y, lam=1.0, bias=True, split=True):
    """Exact LOO (kernel) ridge regression onto the one-hot category matrix, linear kernel K = X X^T
    (+1 for an intercept).  LOO prediction uses the closed form f_-i = (f_i - H_ii y_i) / (1 - H_ii),
    which equals refitting on the other n-1 records (the query's own labels do not influence it)."""
    K = (X @ X.T).toarray() if sp.issparse(X) else X @ X.T
    if bias:
        K = K + 1.0
    Yt = Y / Y.sum(1, keepdims=True) if split else Y
    n = K.shape[0]
    H = K @ np.linalg.inv(K + lam * np.eye(n))
    F = H @ Yt
    h = np.diag(H)[:, None]
    return (F - h * Yt) / (1 - h)


# ------------------------------------------------------------------- stable dense hashed embedding
import zlib
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[a-z0-9][a-z0-9_\-\.]*[a-z0-9]|[a-z0-9]")


def _h(s):
    return zlib.crc32(s.encode('utf-8'))


def hash_embed(text, dim=2048, signed=True, char=(3, 5), word_share=0.5):
    """Dense, stateless, deterministic embedding suitable for a Chroma embedding function.
    Two halves of dim/2: (a) word unigrams + bigrams (lower-case, sklearn English stop words removed),
    (b) char n-grams (3..5) of each word padded with spaces (char_wb).  Per feature weight 1+log(tf)
    (sublinear TF), bucket = crc32(feature) mod half, sign = from a second crc32 bit (signed hashing keeps
    inner products unbiased).  Each half L2-normalised, scaled by sqrt(share), concatenated -> unit vector."""
    half = dim // 2
    words = _WORD.findall(text.lower())
    toks = [w for w in words if w not in ENGLISH_STOP_WORDS]
    wf = Counter(toks)
    wf.update(a + ' ' + b for a, b in zip(toks, toks[1:]))
    cf = Counter()
    for w in words:
        p = ' ' + w + ' '
        for n in range(char[0], char[1] + 1):
            for i in range(len(p) - n + 1):
                cf[p[i:i + n]] += 1
    out = np.zeros(dim, dtype=np.float32)
    for off, feats, share in ((0, wf, word_share), (half, cf, 1 - word_share)):
        v = np.zeros(half)
        for f, tf in feats.items():
            h = _h(f)
            s = (1.0 if (h >> 31) & 1 else -1.0) if signed else 1.0
            v[h % half] += s * (1 + np.log(tf))
        nv = np.linalg.norm(v)
        if nv > 0:
            out[off:off + half] = np.sqrt(share) * v / nv
    return out


def hash_matrix(texts, **kw):
    return np.vstack([hash_embed(t, **kw) for t in texts]).astype(np.float64)


def ridge_fit_primal(X, Y, lam=1.0):
    """What the index does at (re)build time: W = (Xb^T Xb + lam I)^-1 Xb^T Yt, Xb = [X, 1].
    X^T X and X^T Y are sums over records, so they can be updated incrementally on every add/delete."""
    Xb = np.hstack([X, np.ones((X.shape[0], 1))])
    Yt = Y / Y.sum(1, keepdims=True)
    A = Xb.T @ Xb + lam * np.eye(Xb.shape[1])
    return np.linalg.solve(A, Xb.T @ Yt)


def ridge_predict(W, x):
    f = np.append(x, 1.0) @ W
    f = np.maximum(f, 0)
    return f / f.sum() if f.sum() > 0 else np.full(len(f), 1 / len(f))


# ------------------------------------------------------------------------------------------- main
EARLY = ['title', 'summary', 'service', 'symptom', 'operation', 'tags']
FULL = EARLY + ['details', 'manifestation', 'propagation']


def main(full=True):
    t0 = time.time()
    data = load()
    Y = Ymat(data)
    maj_cat, maj = majority(Y)
    n = len(data)
    print(f"records {n}; categories (records carrying each): " +
          ', '.join(f"{c}={int(v)}" for c, v in zip(CATS, Y.sum(0))))
    print(f"non-README label mappings: {dict(Counter(r for d in data for r in d['rules'] if r != 'readme'))}")
    print(f"majority class {maj_cat}: baseline {maj:.3f}; early goal >= {maj + 0.05:.3f}; related goal >= 0.550\n")

    E = [early_fields(d) for d in data]
    FS = [full_fields(d) for d in data]
    FR = [full_fields(d, with_rc_text=True) for d in data]
    te = concat_text(E, EARLY)
    ts = concat_text(FS, FULL)
    tr = concat_text(FR, FULL + ['rc_text'])
    te_plain = concat_text(E, ['title', 'summary', 'service', 'symptom', 'operation'])
    ts_plain = concat_text(FS, ['title', 'summary', 'service', 'symptom', 'operation', 'details',
                                'manifestation', 'propagation'])
    tr_plain = concat_text(FR, ['title', 'summary', 'service', 'symptom', 'operation', 'details',
                                'manifestation', 'propagation', 'rc_text'])

    reps = {}
    tt = time.time()
    H = {k: hash_matrix(v, dim=2048) for k, v in (('e', te), ('s', ts), ('r', tr))}
    t_embed = (time.time() - tt) / (3 * n)
    reps['tfidf-plain'] = {k: normalize(word_tfidf(v, sublinear=False)) for k, v in
                           (('e', te_plain), ('s', ts_plain), ('r', tr_plain))}
    reps['tfidf-sub+tags'] = {k: normalize(word_tfidf(v)) for k, v in (('e', te), ('s', ts), ('r', tr))}
    reps['char-tfidf+tags'] = {k: normalize(char_tfidf(v)) for k, v in (('e', te), ('s', ts), ('r', tr))}
    reps['hash2048'] = H
    we = {'title': 1, 'summary': 1, 'tags': 1}
    ws = dict(we, details=1, manifestation=0.5)
    reps['field-weighted'] = {'e': combo(E, we), 's': combo(FS, ws), 'r': combo(FR, dict(ws, rc_text=1))}
    S = {name: {k: cos(X) for k, X in r.items()} for name, r in reps.items()}

    def bm25S(t):
        Q, D = bm25(t)
        s = (Q @ D.T).toarray()
        np.fill_diagonal(s, -np.inf)
        return s
    Sbm = {k: bm25S(v) for k, v in (('e', te), ('s', ts), ('r', tr))}

    rows = []

    def add(name, early_scores, rel):
        """rel: function(key) -> p@5 for key in s (strict) / r (rc free text)"""
        rows.append((name, accuracy(early_scores, Y), rel('s'), rel('r')))

    add('TF-IDF plain, kNN k=5 vote / plain top-5  [known baseline]',
        knn_scores(S['tfidf-plain']['e'], Y, k=5), lambda k: p_at_k(S['tfidf-plain'][k], Y))
    add('BM25, kNN k=40 vote / plain top-5',
        knn_scores(Sbm['e'], Y, k=40), lambda k: p_at_k(Sbm[k], Y))
    for rep in ('tfidf-sub+tags', 'char-tfidf+tags', 'field-weighted', 'hash2048'):
        add(f'{rep}, kNN k=10 vote / plain top-5', knn_scores(S[rep]['e'], Y, k=10),
            lambda k: p_at_k(S[rep][k], Y))
        add(f'{rep}, kNN k=40 vote / plain top-5', knn_scores(S[rep]['e'], Y, k=40),
            lambda k: p_at_k(S[rep][k], Y))
    add('hash2048, kNN k=40 vote / prior-corrected (alpha=1)', knn_scores(S['hash2048']['e'], Y, k=40, alpha=1),
        lambda k: p_at_k(S['hash2048'][k], Y, P=norm_rows(knn_scores(S['hash2048'][k], Y, k=40, alpha=1)), lam=1))
    add('hash2048, category centroids (Rocchio) / re-rank beta=1', loo_centroid(H['e'], Y),
        lambda k: p_at_k(S['hash2048'][k], Y, P=norm_rows(loo_centroid(H[k], Y)), lam=1))
    add('hash2048, kNN k=40 vote / re-rank by kNN vote beta=1', knn_scores(S['hash2048']['e'], Y, k=40),
        lambda k: p_at_k(S['hash2048'][k], Y, P=norm_rows(knn_scores(S['hash2048'][k], Y, k=40)), lam=1))
    for rep in ('tfidf-sub+tags', 'char-tfidf+tags', 'field-weighted'):
        add(f'{rep}, ridge lam=1 / re-rank beta=1', loo_kridge(reps[rep]['e'], Y, lam=1),
            lambda k: p_at_k(S[rep][k], Y, P=norm_rows(loo_kridge(reps[rep][k], Y, lam=1)), lam=1))
    tt = time.time()
    Pe = norm_rows(loo_kridge(H['e'], Y, lam=1))
    t_ridge_loo = time.time() - tt
    add('hash2048, 0.5 kNN40 + 0.5 ridge / re-rank by the mix',
        0.5 * norm_rows(knn_scores(S['hash2048']['e'], Y, k=40)) + 0.5 * Pe,
        lambda k: p_at_k(S['hash2048'][k], Y, lam=1, P=0.5 * norm_rows(knn_scores(S['hash2048'][k], Y, k=40))
                         + 0.5 * norm_rows(loo_kridge(H[k], Y, lam=1))))
    add('** hash2048, ridge lam=1 / re-rank beta=1  [RECOMMENDED]', Pe,
        lambda k: p_at_k(S['hash2048'][k], Y, P=norm_rows(loo_kridge(H[k], Y, lam=1)), lam=1))

    w = max(len(r[0]) for r in rows)
    print(f"{'method (early vote / related ranking)':{w}s}  early_acc  rel_p@5_strict  rel_p@5_rcfree  majority")
    for r in rows:
        print(f"{r[0]:{w}s}  {r[1]:9.3f}  {r[2]:14.3f}  {r[3]:14.3f}  {maj:8.3f}")

    # --------------------------------------------------------------------------- runtimes
    X = H['s']
    tt = time.time(); W = ridge_fit_primal(X[1:], Y[1:], lam=1); t_fit = time.time() - tt
    P0 = ridge_predict(W, X[0])
    kr = norm_rows(loo_kridge(X, Y, lam=1))[0]
    tt = time.time()
    for i in range(50):
        ridge_predict(W, X[i])
    t_pred = (time.time() - tt) / 50
    print(f"\nruntimes: hash embedding {1000 * t_embed:.2f} ms/record (pure Python); primal ridge fit on {n - 1} "
          f"records x 2049 dims {t_fit:.2f} s; ridge prediction {1000 * t_pred:.3f} ms/query; whole LOO ridge "
          f"(closed form) {t_ridge_loo:.2f} s; primal == closed-form LOO check: max |diff| "
          f"{np.abs(P0 - kr).max():.1e}")

    if not full:
        print(f"\ntotal {time.time() - t0:.1f}s")
        return
    # --------------------------------------------------------------------------- sensitivity
    print("\nsensitivity of the recommended method (one parameter varied, others at default):")

    def rec(Xe, Xs, lam=1.0, beta=1.0):
        Ss = cos(Xs)
        return (accuracy(loo_kridge(Xe, Y, lam=lam), Y),
                p_at_k(Ss, Y, P=norm_rows(loo_kridge(Xs, Y, lam=lam)), lam=beta))
    for lam in (0.1, 0.3, 1, 3, 10):
        print(f"  ridge lam={lam:<5}  early %.3f  related %.3f" % rec(H['e'], H['s'], lam=lam))
    for beta in (0, 0.1, 0.3, 1, 3, 10):
        print(f"  re-rank beta={beta:<4} early %.3f  related %.3f" % rec(H['e'], H['s'], beta=beta))
    for dim in (512, 1024, 4096, 8192):
        print(f"  dim={dim:<5}          early %.3f  related %.3f" %
              rec(hash_matrix(te, dim=dim), hash_matrix(ts, dim=dim)))
    print("  unsigned hashing   early %.3f  related %.3f" %
          rec(hash_matrix(te, signed=False), hash_matrix(ts, signed=False)))
    for ws_ in (0.25, 0.75, 1.0):
        print(f"  word_share={ws_:<4}    early %.3f  related %.3f" %
              rec(hash_matrix(te, word_share=ws_), hash_matrix(ts, word_share=ws_)))
    print("  no tag tokens      early %.3f  related %.3f" %
          rec(hash_matrix(concat_text(E, EARLY[:-1])), hash_matrix(concat_text(FS, [f for f in FULL if f != 'tags']))))
    print("  early: title+summary only  early %.3f" % accuracy(loo_kridge(hash_matrix(concat_text(E, ['title', 'summary'])), Y, lam=1), Y))
    print("  kNN vote instead, k sweep (early / related re-ranked by kNN vote):")
    for k in (5, 10, 20, 40, 80):
        print(f"    k={k:<3} early %.3f  related %.3f" % (
            accuracy(knn_scores(S['hash2048']['e'], Y, k=k), Y),
            p_at_k(S['hash2048']['s'], Y, P=norm_rows(knn_scores(S['hash2048']['s'], Y, k=k)), lam=1)))
    print("  corpus size (20 random subsets each; early acc / majority / related p@5):")
    rng = np.random.default_rng(0)
    for m in (80, 120, 160):
        res = []
        for _ in range(20):
            idx = np.sort(rng.choice(n, m, replace=False))
            y = Y[idx]
            res.append((accuracy(loo_kridge(H['e'][idx], y, lam=1), y), majority(y)[1],
                        p_at_k(S['hash2048']['s'][np.ix_(idx, idx)], y, P=norm_rows(loo_kridge(H['s'][idx], y, lam=1)), lam=1)))
        r = np.mean(res, 0)
        print(f"    n={m:<4} early %.3f (majority %.3f)  related %.3f" % tuple(r))
    print(f"\ntotal {time.time() - t0:.1f}s")


if __name__ == '__main__':
    main(full='--quick' not in sys.argv)
