// Test archives: a minimal ustar writer with full control over names and entry types, which
// the tar package's packer would sanitise (tests need `../`, absolute paths and links).

export interface TarItem {
  name: string;
  /** tar typeflag: 0 file, 1 hardlink, 2 symlink, 3 char device, 5 directory, 6 fifo */
  type?: string;
  body?: Buffer | string;
  link?: string;
}

/** A minimal ustar writer: full control over names and types, which tar's packer sanitises. */
export function makeTar(items: TarItem[]): Buffer {
  const blocks: Buffer[] = [];
  for (const item of items) {
    const body = Buffer.from(item.body ?? '');
    const h = Buffer.alloc(512);
    h.write(item.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(item.type ?? '0', 156);
    if (item.link) h.write(item.link, 157, 100);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
