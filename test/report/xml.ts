// A small XML well-formedness check for the SVG plots: balanced tags, quoted attributes, no
// stray `<` or `&` in text, one root element. Enough to catch an unescaped class name.

const NAME = /[A-Za-z_][\w:.-]*/y;

export function xmlProblems(xml: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const textOk = (t: string, at: number) => {
    const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(t);
    if (bad) problems.push(`bare & at ${at + bad.index}`);
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const chunk = lt < 0 ? xml.slice(i) : xml.slice(i, lt);
    if (chunk.trim() && stack.length === 0) problems.push(`text outside the root at ${i}`);
    textOk(chunk, i);
    if (lt < 0) break;
    if (xml.startsWith('<?', lt)) {
      const end = xml.indexOf('?>', lt);
      if (end < 0) return [...problems, 'unterminated <?'];
      i = end + 2;
      continue;
    }
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt);
      if (end < 0) return [...problems, 'unterminated comment'];
      i = end + 3;
      continue;
    }
    let j = lt + 1;
    const closing = xml[j] === '/';
    if (closing) j++;
    NAME.lastIndex = j;
    const m = NAME.exec(xml);
    if (!m) return [...problems, `bad tag name at ${lt}`];
    const name = m[0];
    j = NAME.lastIndex;
    const attrs = new Set<string>();
    for (;;) {
      while (/\s/.test(xml[j] ?? '')) j++;
      const c = xml[j];
      if (c === undefined) return [...problems, `unterminated tag ${name}`];
      if (c === '>' || (c === '/' && xml[j + 1] === '>')) break;
      if (closing) return [...problems, `attributes on closing tag ${name}`];
      NAME.lastIndex = j;
      const a = NAME.exec(xml);
      if (!a) return [...problems, `bad attribute in ${name} at ${j}`];
      if (attrs.has(a[0])) problems.push(`duplicate attribute ${a[0]} in ${name}`);
      attrs.add(a[0]);
      j = NAME.lastIndex;
      if (xml[j] !== '=' || (xml[j + 1] !== '"' && xml[j + 1] !== "'")) return [...problems, `unquoted attribute ${a[0]} in ${name}`];
      const q = xml[j + 1]!;
      const end = xml.indexOf(q, j + 2);
      if (end < 0) return [...problems, `unterminated attribute ${a[0]}`];
      const value = xml.slice(j + 2, end);
      if (value.includes('<')) problems.push(`< in attribute ${a[0]} of ${name}`);
      textOk(value, j + 2);
      j = end + 1;
    }
    const selfClosing = xml[j] === '/';
    i = j + (selfClosing ? 2 : 1);
    if (closing) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
    } else if (!selfClosing) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  if (stack.length) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}
