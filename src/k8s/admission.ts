// The AdmissionReview (v1) envelope shared by our webhooks (validation, sidecar injection): the
// request's checks and the answer's shape. Malformed input → `ok: false` naming the field.
import { isObject } from '../model/problems.js';

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  warnings?: string[];
  /** Mutating webhook: a base64 JSON patch. */
  patchType?: 'JSONPatch';
  patch?: string;
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type ReviewResult = { ok: true; review: AdmissionReviewOut } | { ok: false; error: string };

export type AdmissionRequest =
  | { ok: false; error: string }
  | { ok: true; req: Record<string, unknown>; answer: (r: Omit<AdmissionResponse, 'uid'>) => ReviewResult };

/** The `request` of an AdmissionReview body, and the function answering it (with its uid). */
export function admissionRequest(body: unknown): AdmissionRequest {
  if (!isObject(body)) return { ok: false, error: 'body: expected a JSON AdmissionReview object' };
  if (body['kind'] !== 'AdmissionReview')
    return { ok: false, error: `kind: expected AdmissionReview, got ${JSON.stringify(body['kind'])}` };
  const req = body['request'];
  if (!isObject(req)) return { ok: false, error: 'request: missing' };
  const uid = req['uid'];
  if (typeof uid !== 'string' || uid === '') return { ok: false, error: 'request.uid: expected a non-empty string' };
  return {
    ok: true,
    req,
    answer: (r) => ({
      ok: true,
      review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...r } },
    }),
  };
}
