package org.genoflow.hadoop;

import java.io.IOException;
import java.io.InputStream;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;
import org.apache.hadoop.fs.Seekable;
import org.apache.hadoop.io.compress.SplitCompressionInputStream;

/**
 * The decompressed bytes of the BGZF blocks from the first block that starts at or after the
 * split's start.
 *
 * <p>How the split boundary works with Hadoop's LineRecordReader (which skips the first line of
 * every split but the first, and reads lines while {@code getPos() <= end}): {@link #read} never
 * returns bytes of two blocks at once, and {@link #getPos} is the start of the block whose first
 * byte was most recently returned, plus one. So a split keeps taking lines until it has consumed
 * a byte of the first block that starts after its end, which is exactly the block the next split
 * starts from and whose first (partial or whole) line that split skips.
 */
final class BgzfSplitInputStream extends SplitCompressionInputStream {
  static final int MAX_BLOCK = 1 << 16;
  private static final int MIN_HEADER = 18;
  // A block start is accepted only when the next block's header follows it, and a real block
  // start lies within MAX_BLOCK bytes of any offset: scanning 3 blocks' worth always finds one.
  private static final int SCAN = 3 * MAX_BLOCK;

  private final byte[] block = new byte[MAX_BLOCK];
  private final byte[] data = new byte[MAX_BLOCK];
  private final Inflater inflater = new Inflater(true);
  private final CRC32 crc = new CRC32();
  private long nextBlockStart;
  private long blockStart;
  private int dataLength;
  private int dataPos;
  private long advertisedPos;
  private boolean atEnd;

  BgzfSplitInputStream(InputStream in, long start, long end) throws IOException {
    super(in, start, end);
    advertisedPos = start;
    nextBlockStart = start == 0 ? 0 : firstBlockAtOrAfter(start);
    if (nextBlockStart >= 0) {
      ((Seekable) in).seek(nextBlockStart);
    } else {
      atEnd = true;
    }
  }

  /** Whether the file starts with a BGZF block header (the stream is left at an unknown offset). */
  static boolean startsWithBgzfBlock(InputStream in, Seekable seekable) throws IOException {
    seekable.seek(0);
    byte[] head = new byte[512];
    int n = readUpTo(in, head, 0, head.length);
    return blockSizeAt(head, 0, n) > 0;
  }

  private long firstBlockAtOrAfter(long start) throws IOException {
    ((Seekable) in).seek(start);
    byte[] scan = new byte[SCAN];
    int n = readUpTo(in, scan, 0, SCAN);
    for (int i = 0; i + MIN_HEADER <= n; i++) {
      int size = blockSizeAt(scan, i, n);
      if (size < 0) {
        continue;
      }
      int next = i + size;
      boolean lastBlock = next == n && n < SCAN;
      if (lastBlock || blockSizeAt(scan, next, n) > 0) {
        return start + i;
      }
    }
    if (n < SCAN) {
      return -1;  // no block starts between this split's start and the end of the file
    }
    throw new IOException(BgzfCodec.ERROR_PREFIX + "no BGZF block header within " + SCAN
        + " bytes after byte offset " + start + ": the file is corrupt");
  }

  /** The total size (BSIZE + 1) of a BGZF block whose header is at {@code buf[i]}, or -1. */
  static int blockSizeAt(byte[] buf, int i, int n) {
    if (i + MIN_HEADER > n || (buf[i] & 0xff) != 31 || (buf[i + 1] & 0xff) != 139
        || (buf[i + 2] & 0xff) != 8 || (buf[i + 3] & 4) == 0) {
      return -1;
    }
    int xlen = u16(buf, i + 10);
    if (xlen < 6 || i + 12 + xlen > n) {
      return -1;
    }
    int size = -1;
    for (int k = i + 12; k + 4 <= i + 12 + xlen; ) {
      int length = u16(buf, k + 2);
      if ((buf[k] & 0xff) == 66 && (buf[k + 1] & 0xff) == 67 && length == 2 && k + 6 <= i + 12 + xlen) {
        size = u16(buf, k + 4) + 1;
      }
      k += 4 + length;
    }
    return size >= 12 + xlen + 8 ? size : -1;
  }

  private static int u16(byte[] buf, int i) {
    return (buf[i] & 0xff) | ((buf[i + 1] & 0xff) << 8);
  }

  private static int u32(byte[] buf, int i) {
    return u16(buf, i) | (u16(buf, i + 2) << 16);
  }

  private static int readUpTo(InputStream in, byte[] buf, int off, int len) throws IOException {
    int total = 0;
    while (total < len) {
      int n = in.read(buf, off + total, len - total);
      if (n < 0) {
        break;
      }
      total += n;
    }
    return total;
  }

  /** Reads and inflates the next block; false at the end of the file. */
  private boolean loadBlock() throws IOException {
    blockStart = nextBlockStart;
    int got = readUpTo(in, block, 0, 12);
    if (got == 0) {
      return false;
    }
    if (got < 12) {
      throw truncated();
    }
    int xlen = u16(block, 10);
    if (readUpTo(in, block, 12, xlen) < xlen) {
      throw truncated();
    }
    int size = blockSizeAt(block, 0, 12 + xlen);
    if (size < 0) {
      throw corrupt("not a BGZF block header");
    }
    if (readUpTo(in, block, 12 + xlen, size - 12 - xlen) < size - 12 - xlen) {
      throw truncated();
    }
    nextBlockStart = blockStart + size;
    int expectedLength = u32(block, size - 4);
    if (expectedLength < 0 || expectedLength > MAX_BLOCK) {
      throw corrupt("its uncompressed size " + expectedLength + " is out of range");
    }
    inflater.reset();
    inflater.setInput(block, 12 + xlen, size - 12 - xlen - 8);
    try {
      dataLength = expectedLength == 0 ? 0 : inflater.inflate(data, 0, expectedLength);
    } catch (DataFormatException e) {
      throw corrupt(e.getMessage());
    }
    if (dataLength != expectedLength || (expectedLength > 0 && !inflater.finished())) {
      throw corrupt("it inflates to " + dataLength + " bytes, its header says " + expectedLength);
    }
    crc.reset();
    crc.update(data, 0, dataLength);
    if ((int) crc.getValue() != u32(block, size - 8)) {
      throw corrupt("CRC32 mismatch");
    }
    dataPos = 0;
    return true;
  }

  private IOException truncated() {
    return new IOException(BgzfCodec.ERROR_PREFIX + "the BGZF block at byte offset " + blockStart
        + " is truncated (the file ends inside it)");
  }

  private IOException corrupt(String why) {
    return new IOException(BgzfCodec.ERROR_PREFIX + "the BGZF block at byte offset " + blockStart
        + " is corrupt (" + why + ")");
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    while (dataPos == dataLength) {
      if (atEnd || !loadBlock()) {
        atEnd = true;
        return -1;
      }
    }
    if (dataPos == 0) {
      advertisedPos = blockStart + 1;
    }
    int n = Math.min(len, dataLength - dataPos);
    System.arraycopy(data, dataPos, b, off, n);
    dataPos += n;
    return n;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    int n = read(one, 0, 1);
    return n <= 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public long getPos() {
    return advertisedPos;
  }

  @Override
  public void resetState() {}

  @Override
  public void close() throws IOException {
    inflater.end();
    super.close();
  }
}
