package org.genoflow.ml;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;

/**
 * {@code java.lang.Math.exp} over an array of doubles, for train's driver-side GBT fits
 * (genoflow.models.local_fit, decision 0035).
 *
 * <p>MLlib's log-loss gradient calls {@code Math.exp}, which HotSpot computes with its own intrinsic;
 * C's and numpy's exp differ from it in the last bit of 0.3 % and 5 % of values. One such bit can flip
 * a later split, so a fit that is to give MLlib's trees takes its exponentials from the JVM, one
 * py4j call per boosting iteration: little-endian doubles in, little-endian doubles out.
 */
public final class JvmMath {
  private JvmMath() {}

  public static byte[] exp(byte[] packed) {
    DoubleBuffer in = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
    ByteBuffer out = ByteBuffer.allocate(packed.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < in.limit(); i++) {
      out.putDouble(Math.exp(in.get(i)));
    }
    return out.array();
  }
}
