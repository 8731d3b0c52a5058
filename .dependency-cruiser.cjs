/**
 * The import rules of src/ (docs/architecture.md, "Layers"), checked by test/architecture.test.ts:
 * imports go down the layers, never up, and never in a circle (type-only imports count too).
 */
module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'a cycle makes every module in it depend on all the others', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'sdk-stays-portable',
      comment: 'the SDK is bundled for browsers: the wire (protocol/) and common/ only, never the broker',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/(client|protocol|common)/' },
    },
    { name: 'protocol-is-a-leaf', severity: 'error', from: { path: '^src/protocol/' }, to: { path: '^src/', pathNot: '^src/(protocol|common)/' } },
    { name: 'common-is-a-leaf', severity: 'error', from: { path: '^src/common/' }, to: { path: '^src/', pathNot: '^src/(common|protocol)/' } },
    {
      name: 'security-below-the-core',
      comment: 'identities, permissions, limits and audit are transport-free building blocks: the core and the front doors use them',
      severity: 'error',
      from: { path: '^src/security/' },
      to: { path: '^src/', pathNot: '^src/(security|protocol|common)/' },
    },
    {
      name: 'storage-below-the-actor',
      severity: 'error',
      from: { path: '^src/(log|journal|ring|supervisor)/' },
      to: { path: '^src/(partition|partition-worker|core|features|gateway|http|client|cli)/|^src/broker\\.ts$' },
    },
    {
      name: 'the-actor-below-the-core',
      severity: 'error',
      from: { path: '^src/(partition|partition-worker)/' },
      to: { path: '^src/(core|features|gateway|http|client|cli)/|^src/broker\\.ts$' },
    },
    {
      name: 'the-core-knows-no-front-door-and-no-feature',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(features|gateway|http|client|cli)/|^src/broker\\.ts$' },
    },
    {
      name: 'features-only-through-the-core',
      comment: 'a feature is written against core/feature-host.ts, never a front door or the composition root',
      severity: 'error',
      from: { path: '^src/features/' },
      to: { path: '^src/(gateway|http|client|cli)/|^src/broker\\.ts$' },
    },
    {
      name: 'front-doors-see-no-feature',
      comment: 'features are installed at the composition root (src/broker.ts); front doors meet them only in the core',
      severity: 'error',
      from: { path: '^src/(gateway|http)/' },
      to: { path: '^src/(features|client|cli)/|^src/broker\\.ts$' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
