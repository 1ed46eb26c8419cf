/** The one user known to the tls-basic registry (htpasswd) and to the token server. */
export const TEST_USERNAME = 'testuser'
export const TEST_PASSWORD = 'testpass'

/** Repositories that the token server lets anonymous clients pull (push-fixtures.sh pushes it everywhere). */
export const PUBLIC_REPOSITORIES: readonly string[] = ['public/busybox']
