package org.genoflow.hadoop;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;
import org.apache.hadoop.fs.Seekable;
import org.apache.hadoop.io.compress.SplitCompressionInputStream;

/**
 * A gzip file that is not BGZF: the split starting at byte 0 decodes the whole file, any other
 * split is empty (its position is reported past its end, so the line reader takes no line).
 */
final class WholeGzipInputStream extends SplitCompressionInputStream {
  private final GZIPInputStream gzip;

  WholeGzipInputStream(InputStream in, long start, long end) throws IOException {
    super(in, start, end);
    if (start == 0) {
      ((Seekable) in).seek(0);
      // GZIPInputStream reads concatenated gzip members, as gunzip does.
      gzip = new GZIPInputStream(in, 1 << 16);
    } else {
      gzip = null;
    }
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (gzip == null) {
      return -1;
    }
    try {
      return gzip.read(b, off, len);
    } catch (EOFException e) {
      throw new IOException(BgzfCodec.ERROR_PREFIX
          + "the gzip stream is truncated (it ends before the end-of-stream marker)", e);
    } catch (ZipException e) {
      throw new IOException(BgzfCodec.ERROR_PREFIX + "the gzip stream is corrupt (" + e.getMessage() + ")", e);
    }
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    int n = read(one, 0, 1);
    return n <= 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public long getPos() {
    return gzip == null ? Long.MAX_VALUE : getAdjustedStart();
  }

  @Override
  public void resetState() {}

  @Override
  public void close() throws IOException {
    if (gzip != null) {
      gzip.close();
    } else {
      super.close();
    }
  }
}
