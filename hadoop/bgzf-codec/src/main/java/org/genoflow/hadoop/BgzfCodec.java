package org.genoflow.hadoop;

import java.io.IOException;
import java.io.InputStream;
import org.apache.hadoop.fs.Seekable;
import org.apache.hadoop.io.compress.Decompressor;
import org.apache.hadoop.io.compress.GzipCodec;
import org.apache.hadoop.io.compress.SplitCompressionInputStream;
import org.apache.hadoop.io.compress.SplittableCompressionCodec;

/**
 * A gzip codec that lets Hadoop's line readers (and so Spark's text source) split BGZF files.
 *
 * <p>Registered for ".gz" through {@code io.compression.codecs}, it replaces Hadoop's GzipCodec.
 * A BGZF file (bgzip, htslib) is a series of independent gzip members of at most 64 KiB, so a
 * byte range of the compressed file can be decoded from the first member that starts in it. Any
 * other gzip file cannot be split: the split that starts at byte 0 reads all of it and the
 * others read nothing, which is what Hadoop's own GzipCodec amounts to.
 *
 * <p>Errors on damaged input are IOExceptions whose message starts with {@link #ERROR_PREFIX}
 * and names the compressed byte offset, so the Python driver can turn them into one line.
 */
public class BgzfCodec extends GzipCodec implements SplittableCompressionCodec {
  public static final String ERROR_PREFIX = "genoflow-bgzf: ";

  @Override
  public SplitCompressionInputStream createInputStream(
      InputStream seekableIn, Decompressor decompressor, long start, long end, READ_MODE readMode)
      throws IOException {
    if (!(seekableIn instanceof Seekable)) {
      throw new IOException(ERROR_PREFIX + "the input stream is not seekable: " + seekableIn.getClass());
    }
    Seekable seekable = (Seekable) seekableIn;
    if (BgzfSplitInputStream.startsWithBgzfBlock(seekableIn, seekable)) {
      return new BgzfSplitInputStream(seekableIn, start, end);
    }
    return new WholeGzipInputStream(seekableIn, start, end);
  }
}
