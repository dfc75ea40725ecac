/**
 * A key ring in Secrets Manager, generated at deploy time by a small custom resource: no key
 * material is ever in the template, the cloud assembly or a CDK process. The generator writes a
 * ring only while the secret holds none, so redeploys never replace keys; rotation is the
 * operator's (docs/deploy.md). Two kinds:
 *
 * - `token`: the token-encryption key ring (CONTRACT.md: `{"current": "<kid>", "keys": {"<kid>":
 *   "<base64url of 32 random bytes>"}}`);
 * - `signing`: the ID-token signing keys (`{"current": "<kid>", "keys": {"<kid>": <private JWK>}}`,
 *   one generation: an RSA 2048 key `<g>` for RS256 and a P-256 key `<g>.es256` for ES256, as
 *   lib/oidc/signing-key-ring.ts reads them).
 */
import { CustomResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, type IDependable } from 'constructs';
import { acknowledgeNag } from '../nag.js';
import { BROKER_RUNTIME } from './broker-function.js';

/**
 * The generator (CommonJS, inline, the runtime's AWS SDK: it runs once per deploy). It replaces the
 * secret's value only when that value is not a ring of its kind, i.e. the placeholder
 * CloudFormation created the secret with; it never logs or returns a key.
 */
export const KEY_RING_GENERATOR_CODE = `
const { SecretsManagerClient, GetSecretValueCommand, PutSecretValueCommand } = require('@aws-sdk/client-secrets-manager');
const { randomBytes, generateKeyPairSync } = require('node:crypto');
const sm = new SecretsManagerClient({});
function isRing(text, signing) {
  try {
    const ring = JSON.parse(text);
    const key = typeof ring.current === 'string' && typeof ring.keys === 'object' && ring.keys !== null ? ring.keys[ring.current] : undefined;
    return signing ? typeof key === 'object' && key !== null : typeof key === 'string';
  } catch {
    return false;
  }
}
function newRing(signing) {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  if (!signing) {
    const kid = 'k' + day;
    return { kid, ring: { current: kid, keys: { [kid]: randomBytes(32).toString('base64url') } } };
  }
  const kid = 's' + day;
  const jwk = (type, options, alg) => ({ ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }), alg, use: 'sig' });
  return { kid, ring: { current: kid, keys: { [kid]: jwk('rsa', { modulusLength: 2048 }, 'RS256'), [kid + '.es256']: jwk('ec', { namedCurve: 'P-256' }, 'ES256') } } };
}
exports.handler = async (event) => {
  const secretId = event.ResourceProperties.SecretId;
  const signing = event.ResourceProperties.Kind === 'signing';
  if (event.RequestType === 'Create' || event.RequestType === 'Update') {
    const current = await sm.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (isRing(current.SecretString ?? '', signing)) {
      console.log(JSON.stringify({ event: 'keyring.kept', secretId }));
    } else {
      const { kid, ring } = newRing(signing);
      await sm.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: JSON.stringify(ring) }));
      console.log(JSON.stringify({ event: 'keyring.generated', secretId, kid }));
    }
  }
  return { PhysicalResourceId: secretId };
};
`;

export interface KeyRingProps {
  /**
   * Which ring: the token-encryption keys or the ID-token signing keys.
   *
   * @default 'token'
   */
  readonly kind?: 'token' | 'signing';
  /** The secret's name: the configuration references the ring by it (`tokenEncryptionKeys` or `signingKeys`). */
  readonly secretName: string;
  /** The key the secret is encrypted with. */
  readonly encryptionKey: kms.IKey;
  /**
   * How long the generator's logs are kept.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

export class KeyRing extends Construct {
  readonly secret: secretsmanager.ISecret;
  readonly secretName: string;
  /** Depend on this to run after the ring exists (the functions read it at their first request). */
  readonly generated: IDependable;

  constructor(scope: Construct, id: string, props: KeyRingProps) {
    super(scope, id);
    this.secretName = props.secretName;
    const signing = props.kind === 'signing';
    const secret = new secretsmanager.Secret(this, 'Secret', {
      secretName: props.secretName,
      description: signing
        ? 'oauth broker ID-token signing keys {"current": kid, "keys": {kid: private JWK}}; rotate per docs/deploy.md'
        : 'oauth broker token-encryption key ring {"current": kid, "keys": {kid: base64url(32 bytes)}}; rotate per docs/deploy.md',
      encryptionKey: props.encryptionKey,
      // A placeholder only: CloudFormation cannot create a secret without a value. The generator
      // below replaces it with a key ring before any function exists.
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ uninitialized: 'replaced by the key ring generator at deploy' }),
        generateStringKey: 'placeholder',
        excludePunctuation: true,
      },
      // Sessions in the retained table are readable only with the token keys; apps trust the signing keys.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.secret = secret;
    acknowledgeNag(secret, 'AwsSolutions-SMG4', signing
      ? 'Signing keys are rotated by adding a generation, publishing it at /jwks before promoting it, and retiring the old one only after every token it signed has expired (docs/deploy.md): replacing them on a schedule, as Secrets Manager rotation does, would make apps fail to verify ID tokens.'
      : 'A key ring is rotated by adding a key, making it current and dropping the old one only after ttl.sessionMaxSeconds (docs/deploy.md): replacing it on a schedule, as Secrets Manager rotation does, would end every session encrypted under the old key.');

    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const logGroup = new logs.LogGroup(this, 'GeneratorLogs', { retention });
    const role = new iam.Role(this, 'GeneratorRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `oauth broker ${signing ? 'signing key' : 'key ring'} generator (custom resource)`,
    });
    logGroup.grantWrite(role);
    const generator = new lambda.Function(this, 'Generator', {
      description: `oauth broker: generates the ${signing ? 'ID-token signing keys' : 'token key ring'} once, at deploy`,
      runtime: BROKER_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(KEY_RING_GENERATOR_CODE),
      timeout: Duration.seconds(30),
      memorySize: 256,
      role,
      logGroup,
    });
    secret.grantRead(generator);
    secret.grantWrite(generator);

    // The framework function gets a role of its own (no AWS managed policy): its log group only.
    const providerLogs = new logs.LogGroup(this, 'ProviderLogs', { retention });
    const providerRole = new iam.Role(this, 'ProviderRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `oauth broker ${signing ? 'signing key' : 'key ring'} custom resource framework`,
    });
    providerLogs.grantWrite(providerRole);
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: generator,
      logGroup: providerLogs,
      frameworkOnEventRole: providerRole,
    });
    const generatorId = Stack.of(this).resolve((generator.node.defaultChild as lambda.CfnFunction).logicalId) as string;
    acknowledgeNag(providerRole, `AwsSolutions-IAM5[Resource::<${generatorId}.Arn>:*]`,
      'The custom resource framework may invoke the generator function and its versions (ARN:*), the one function it exists to call; it is granted by Provider itself.');
    this.generated = new CustomResource(this, 'Generated', {
      serviceToken: provider.serviceToken,
      resourceType: signing ? 'Custom::BrokerSigningKeys' : 'Custom::BrokerKeyRing',
      properties: signing ? { SecretId: secret.secretArn, Kind: 'signing' } : { SecretId: secret.secretArn },
    });
  }
}
