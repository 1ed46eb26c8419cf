/**
 * What a layer extracted on its own (into an empty directory, for the layer store) cannot show by
 * its files alone, reported while it is unpacked so that a snapshotter can later stack it onto
 * its parents exactly as a flattening unpack would have. Paths are relative to the layer root,
 * cleaned, as byte strings (latin1: one char per byte, so non-UTF-8 names survive JSON).
 *
 * - `whiteout`: remove `path` of the lower layers (the tar name: its parent is resolved in the
 *   stacked tree, where it may go through a symlink of a lower layer);
 * - `opaque`: empty the lower layers' directory `path` (tar name, as above);
 * - `link`: a hardlink whose target is not in this layer, so a file of a lower layer (tar names);
 * - `implicit-dir`: a directory the layer has no entry for, made only to hold its children (a
 *   physical path in the layer directory; '' for the root when there is no `.` entry); stacking
 *   must keep the lower directory's metadata, and follow a lower symlink there as unpacking would;
 * - `xattrs`: the entry's xattrs from the archive (physical path), to set again on a copy.
 */
export type LayerChange =
  | { kind: 'whiteout'; path: string }
  | { kind: 'opaque'; path: string }
  | { kind: 'link'; path: string; target: string }
  | { kind: 'implicit-dir'; path: string }
  | { kind: 'xattrs'; path: string; xattrs: Record<string, string> }

/** The xattrs of an archive entry as JSON-able data: values base64. */
export function xattrRecord(xattrs: Map<string, Buffer>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of xattrs) out[name] = value.toString('base64')
  return out
}

export function xattrMap(record: Record<string, string>): Map<string, Buffer> {
  return new Map(Object.entries(record).map(([name, value]) => [name, Buffer.from(value, 'base64')]))
}
