package org.genoflow.hadoop;

/** {@link BgzfCodec} for files named "*.bgz" (the other extension bgzip files go by). */
public class BgzCodec extends BgzfCodec {
  @Override
  public String getDefaultExtension() {
    return ".bgz";
  }
}
