/** Shared by the infra tests: the app exactly as `cdk synth` builds it, with cdk.json's context. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { createBrokerApp } from '../../infra/broker-app.js';
import { EXAMPLE_CONFIG_PATH } from '../../infra/config.js';
import { PROJECT_ROOT } from '../../infra/constructs/broker-function.js';

export const SYNTH_TIMEOUT = { timeout: 120_000 };

/** The context `cdk synth` gets from cdk.json (feature flags included), so tests see the same stack. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  return cdkJson.context;
}

/**
 * Builds and synthesizes the broker app from the example configuration (named, as the synth
 * requires) unless `context` names another; the environment is empty so a developer's
 * BROKER_CONFIG does not leak in.
 */
export function synthBroker(context: Record<string, unknown> = {}) {
  const { app, stack } = createBrokerApp({ context: { ...cdkJsonContext(), brokerConfig: EXAMPLE_CONFIG_PATH, ...context } }, {});
  const template = Template.fromStack(stack);
  return { app, stack, template };
}

/** Skips esbuild in tests that do not look at the code assets. */
export const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

export function logicalId(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(construct).resolve(element.logicalId) as string;
}

/** cdk-nag AwsSolutions findings left after the acknowledgements. */
export function nagViolations(root: IConstruct) {
  return new AwsSolutionsChecks().validateScope(root).violations;
}

/** Every acknowledgement in the tree: construct path, rule id and reason. */
export function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === 'aws:cdk:acknowledged-rules')
      .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ path: c.node.path, id, reason }))),
  );
}

export interface PolicyStatement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
  Principal?: unknown;
}

/** The statements of the inline policy attached to a role, actions sorted, in a stable order. */
export function roleStatements(template: Template, roleLogicalId: string): PolicyStatement[] {
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
    (p['Properties'].Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleLogicalId })),
  );
  return policies.flatMap((p) => p['Properties'].PolicyDocument.Statement as PolicyStatement[]).map(normalize).sort(byActions);
}

export function normalize(s: PolicyStatement): PolicyStatement {
  return { ...s, Action: typeof s.Action === 'string' ? [s.Action] : [...s.Action].sort() };
}

export function byActions(a: PolicyStatement, b: PolicyStatement): number {
  return JSON.stringify(a.Action).localeCompare(JSON.stringify(b.Action));
}
