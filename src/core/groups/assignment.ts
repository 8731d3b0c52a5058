/** Range assignment (Kafka's RangeAssignor for one topic): members sorted by id, partitions split in contiguous runs. Pure. */
export function assignRange(memberIds: readonly string[], partitions: number): Map<string, number[]> {
  const members = [...memberIds].sort();
  const out = new Map<string, number[]>();
  if (members.length === 0) return out;
  const per = Math.floor(partitions / members.length);
  const extra = partitions % members.length;
  let p = 0;
  members.forEach((m, i) => {
    const n = per + (i < extra ? 1 : 0);
    const mine: number[] = [];
    for (let k = 0; k < n; k++) mine.push(p++);
    out.set(m, mine);
  });
  return out;
}
