package org.genoflow.ml;

import java.lang.reflect.Constructor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.util.Base64;
import java.util.Random;

import org.apache.commons.math3.distribution.PoissonDistribution;

/**
 * The JVM's own numbers for train's driver-side fits (genoflow.models.local_fit, decision 0035), in bulk:
 * one py4j call returns what MLlib draws or computes value by value. Arrays travel as little-endian bytes,
 * and come back as Base64 text: py4j decodes a returned byte[] in Python byte by byte (~0.1 s per forest's
 * bootstrap draws), and a string in C.
 */
public final class JvmMath {
  private static final String XORSHIFT = "org.apache.spark.util.random.XORShiftRandom";

  private JvmMath() {}

  /**
   * {@code Math.exp} of each double. MLlib's log-loss gradient uses it, and HotSpot computes it with its
   * own intrinsic: C's and numpy's exp differ from it in the last bit of 0.3 % and 5 % of values, and one
   * bit can flip a later split.
   */
  public static String exp(byte[] packed) {
    DoubleBuffer in = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
    ByteBuffer out = ByteBuffer.allocate(packed.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < in.limit(); i++) {
      out.putDouble(Math.exp(in.get(i)));
    }
    return text(out);
  }

  /**
   * The first {@code n} draws of MLlib's bootstrap ({@code BaggedPoint}, with replacement): a commons-math
   * {@code PoissonDistribution(mean)} reseeded with {@code seed}, as little-endian ints.
   */
  public static String poissonCounts(double mean, long seed, int n) {
    PoissonDistribution poisson = new PoissonDistribution(mean);
    poisson.reseedRandomGenerator(seed);
    ByteBuffer out = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      out.putInt(poisson.sample());
    }
    return text(out);
  }

  /**
   * The feature subsets MLlib's {@code RandomForest.selectNodesToSplit} draws for its first {@code draws}
   * nodes: a {@code Random(seed)} gives each node a seed, and {@code SamplingUtils.reservoirSampleAndCount}
   * keeps {@code k} of {@code 0 until numFeatures} with Spark's {@code XORShiftRandom} (looked up by name:
   * it is Spark's, on the classpath at run time). {@code draws x k} little-endian ints, in draw order.
   */
  public static String featureSubsets(long seed, int numFeatures, int k, int draws) throws ReflectiveOperationException {
    Constructor<?> xorShift = Class.forName(XORSHIFT).getConstructor(long.class);
    Random seeds = new Random(seed);
    ByteBuffer out = ByteBuffer.allocate(4 * k * draws).order(ByteOrder.LITTLE_ENDIAN);
    int[] reservoir = new int[k];
    for (int d = 0; d < draws; d++) {
      long nodeSeed = seeds.nextLong();
      for (int i = 0; i < k; i++) {
        reservoir[i] = i;
      }
      if (numFeatures > k) {
        Random rand = (Random) xorShift.newInstance(nodeSeed);
        long seen = k;
        for (int item = k; item < numFeatures; item++) {
          seen += 1;
          long replacement = (long) (rand.nextDouble() * seen);
          if (replacement < k) {
            reservoir[(int) replacement] = item;
          }
        }
      }
      for (int i = 0; i < k; i++) {
        out.putInt(reservoir[i]);
      }
    }
    return text(out);
  }

  private static String text(ByteBuffer packed) {
    return Base64.getEncoder().encodeToString(packed.array());
  }
}
