// http: what every function shares at its edge (the Hono app with auth, body limits and one
// error shape, metrics) and the guarded outbound client. Depends only on the base modules.
export { readJsonBody } from './body.ts';
export { ApiError, parseQuery } from './errors.ts';
export { functionApp, type FunctionAppConfig } from './function-app.ts';
export {
  type OutboundPolicy,
  outboundPolicy,
  OutboundRefusedError,
  outboundRequest,
  outboundSecretName,
  refuseForbiddenHeaders,
  strictPolicy,
  urlRefusal,
} from './outbound.ts';
export {
  DEFAULT_TOLERANCE_SECONDS,
  refuseSignatureHeaders,
  signatureHeaders,
  SigningSecretError,
  splitSecrets,
  type VerifiedDelivery,
  verifiedDelivery,
  verifySignature,
} from './signing.ts';
export { timestamp } from './values.ts';
