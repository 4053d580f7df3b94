// Downloads through the API: the key goes in a header, so an archive is fetched and handed to the
// browser as a blob under the name the API gives it.
import type { Crucible } from '@crucible/sdk';

export async function downloadModel(crucible: Crucible, id: string, variant: 'full' | 'adapter'): Promise<string> {
  const res = await crucible.downloadModel(id, { variant });
  const url = URL.createObjectURL(await res.blob());
  const name = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${id.replace(/[^\w.-]+/g, '_')}.tar.gz`;
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}
