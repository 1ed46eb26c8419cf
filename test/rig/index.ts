export { PUBLIC_REPOSITORIES, TEST_PASSWORD, TEST_USERNAME } from './credentials.js'
export { RunError, type RunOptions, type RunResult, run } from './exec.js'
export { type FixtureDescriptor, type FixtureImage, type FixturesInfo, fixturesInfo } from './fixtures.js'
export {
  BUSYBOX_DOCKER_ARCHIVE,
  BUSYBOX_LAYOUT,
  BUSYBOX_OCI_ARCHIVE,
  FIXTURES_DIR,
  FIXTURES_JSON,
  MULTIARCH_LAYOUT,
  REPO_ROOT,
  rigDir,
} from './paths.js'
export {
  type FixtureTag,
  type PushedImage,
  REGISTRY_MODES,
  REGISTRY_PORTS,
  type RegistryMode,
  type RigRegistry,
  registryTools,
  requireRegistry,
  type StartRegistryOptions,
  startRegistry,
  TOKEN_SERVER_PORT,
} from './registry.js'
export {
  type AccessEntry,
  type Authorizer,
  parseScope,
  startTokenServer,
  type TokenRequest,
  type TokenServer,
  type TokenServerBehavior,
  type TokenServerOptions,
} from './token-server.js'
export { hasTool, isCI, requireTool } from './tools.js'
