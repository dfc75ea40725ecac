/** `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { metadataRoute } from '../../lib/routes/metadata.js';
import { defaultRuntime } from '../../lib/runtime.js';

defaultRuntime();
export const handler = lambdaHandler(defaultRuntime, { 'GET /.well-known/oauth-authorization-server': metadataRoute });
