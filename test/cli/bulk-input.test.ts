import { describe, expect, it } from 'vitest';
import { csvCells, readNumbers, type InputRow } from '../../src/cli/bulk-input.js';

async function rows(text: string, o: Parameters<typeof readNumbers>[1] = {}): Promise<InputRow[]> {
  async function* lines() {
    yield* text.split('\n');
  }
  const out: InputRow[] = [];
  for await (const r of readNumbers(lines(), o)) out.push(r);
  return out;
}

describe('issue-bulk input', () => {
  it('splits CSV cells with quotes, commas and doubled quotes', () => {
    expect(csvCells('a,b,,c')).toEqual(['a', 'b', '', 'c']);
    expect(csvCells('"Yamada, Taro",123')).toEqual(['Yamada, Taro', '123']);
    expect(csvCells('"say ""hi""" ,x')).toEqual(['say "hi"', 'x']);
    expect(csvCells('"open,1')).toBeNull();
  });

  it('reads one number a line, skipping blank lines, counting every line', async () => {
    expect(await rows('\ufeff621498320257\n\n  123456789018 \nabc')).toEqual([
      { line: 1, number: '621498320257' },
      { line: 3, number: '123456789018' },
      { line: 4, number: 'abc' },
    ]);
  });

  it('finds the number column of a header by its usual names, or by --column', async () => {
    expect(await rows('Name,Personal Number\nx,1\ny,"2"')).toEqual([
      { line: 2, number: '1' },
      { line: 3, number: '2' },
    ]);
    expect(await rows('id,number,personal_number\n1,2,3')).toEqual([{ line: 2, number: '3' }]);
    expect(await rows('personal_number\n621498320257')).toEqual([{ line: 2, number: '621498320257' }]);
    expect(await rows('a,kojin\n1,2', { column: 'Kojin' })).toEqual([{ line: 2, number: '2' }]);
    await expect(rows('a,b\n1,2')).rejects.toThrow(/no column of the header is named like personal_number/);
    await expect(rows('1,2\n3,4')).rejects.toThrow(/line 1: several columns but no header/);
  });

  it('reports rows it cannot read with their line', async () => {
    expect(await rows('name,number\nx\n"y,2\nz,\nw,5')).toEqual([
      { line: 2, problem: 'malformed CSV row: 1 column, the number is in column 2' },
      { line: 3, problem: 'malformed CSV row: unterminated quote' },
      { line: 4, problem: 'no number in the row' },
      { line: 5, number: '5' },
    ]);
  });

  it('resumes from a line, still reading the header before it', async () => {
    expect(await rows('number\n1\n2\n\n3', { resumeFrom: 4 })).toEqual([{ line: 5, number: '3' }]);
    expect(await rows('1\n2\n3', { resumeFrom: 2 })).toEqual([
      { line: 2, number: '2' },
      { line: 3, number: '3' },
    ]);
  });
});
