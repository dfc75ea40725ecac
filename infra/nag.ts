/**
 * cdk-nag acknowledgements: every one names one AwsSolutions rule (or one finding of it) on the
 * construct that causes it, with the reason it does not apply. cdk-nag 3 reads them from the
 * CDK's own `Validations.acknowledge` metadata.
 */
import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledgeNag(scope: IConstruct, id: `AwsSolutions-${string}`, reason: string): void {
  if (reason.trim().length < 20) throw new TypeError(`the acknowledgement of ${id} needs a real reason`);
  Validations.of(scope).acknowledge({ id, reason });
}
