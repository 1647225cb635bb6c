package org.genoflow.ml;

import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * MLlib's tree nodes ({@code org.apache.spark.ml.tree.Node}) built from the node arrays of a driver-side
 * fit (genoflow.models.local_fit, decision 0037), so that train's final model is the object MLlib's own
 * fit returns without that fit's Spark jobs. One py4j call builds every tree of an ensemble.
 *
 * <p>The classes are Spark's, looked up by name: Spark is on the classpath at run time, and this jar
 * builds without it. Their constructors are {@code private[ml]} in Scala and public in the bytecode.
 *
 * <p>Arrays travel as little-endian bytes, every tree's nodes one after another, each tree in pre-order
 * (its root first, a node's left subtree before its right), as {@code NodeData.build} numbers them.
 */
public final class TreeNodes {
  private static final String TREE = "org.apache.spark.ml.tree.";
  private static final String IMPURITY = "org.apache.spark.mllib.tree.impurity.";

  private TreeNodes() {}

  /**
   * The root of each tree.
   *
   * @param calculator {@code GiniCalculator} or {@code VarianceCalculator}: the nodes' statistics
   * @param statsSize the length of one node's statistics (Gini: the number of classes; variance: 3)
   * @param sizes int per tree: its number of nodes
   * @param feature int per node: the split's feature (ignored at a leaf)
   * @param threshold double per node: the split's threshold (ignored at a leaf)
   * @param left int per node: the left child's index within its tree, -1 at a leaf
   * @param right int per node: the right child's index within its tree
   * @param prediction double per node
   * @param impurity double per node
   * @param gain double per node (ignored at a leaf)
   * @param stats {@code statsSize} doubles per node
   * @param rawCount long per node: the number of rows (bootstrap draws) that reached it
   * @return a {@code Node[]}, one root per tree
   */
  public static Object[] roots(String calculator, int statsSize, byte[] sizes, byte[] feature, byte[] threshold,
      byte[] left, byte[] right, byte[] prediction, byte[] impurity, byte[] gain, byte[] stats, byte[] rawCount)
      throws ReflectiveOperationException {
    Class<?> node = Class.forName(TREE + "Node");
    Class<?> split = Class.forName(TREE + "Split");
    Class<?> impurityCalculator = Class.forName(IMPURITY + "ImpurityCalculator");
    Constructor<?> internalNode = Class.forName(TREE + "InternalNode").getConstructor(
        double.class, double.class, double.class, node, node, split, impurityCalculator);
    Constructor<?> leafNode = Class.forName(TREE + "LeafNode").getConstructor(
        double.class, double.class, impurityCalculator);
    Constructor<?> continuousSplit = Class.forName(TREE + "ContinuousSplit").getConstructor(int.class, double.class);
    Constructor<?> calculatorOf = Class.forName(IMPURITY + calculator).getConstructor(double[].class, long.class);

    ByteBuffer sizeOf = little(sizes);
    ByteBuffer featureOf = little(feature);
    ByteBuffer thresholdOf = little(threshold);
    ByteBuffer leftOf = little(left);
    ByteBuffer rightOf = little(right);
    ByteBuffer predictionOf = little(prediction);
    ByteBuffer impurityOf = little(impurity);
    ByteBuffer gainOf = little(gain);
    ByteBuffer statsOf = little(stats);
    ByteBuffer rawCountOf = little(rawCount);

    int trees = sizes.length / 4;
    Object[] roots = (Object[]) Array.newInstance(node, trees);
    int first = 0;
    for (int t = 0; t < trees; t++) {
      int size = sizeOf.getInt(4 * t);
      Object[] built = new Object[size];
      // In pre-order a node's children come after it: build from the last node back to the root.
      for (int i = size - 1; i >= 0; i--) {
        int at = first + i;
        double[] nodeStats = new double[statsSize];
        for (int s = 0; s < statsSize; s++) {
          nodeStats[s] = statsOf.getDouble(8 * (at * statsSize + s));
        }
        Object calculated = calculatorOf.newInstance(nodeStats, rawCountOf.getLong(8 * at));
        int leftChild = leftOf.getInt(4 * at);
        if (leftChild < 0) {
          built[i] = leafNode.newInstance(predictionOf.getDouble(8 * at), impurityOf.getDouble(8 * at), calculated);
        } else {
          Object splitOn = continuousSplit.newInstance(featureOf.getInt(4 * at), thresholdOf.getDouble(8 * at));
          built[i] = internalNode.newInstance(predictionOf.getDouble(8 * at), impurityOf.getDouble(8 * at),
              gainOf.getDouble(8 * at), built[leftChild], built[rightOf.getInt(4 * at)], splitOn, calculated);
        }
      }
      roots[t] = built[0];
      first += size;
    }
    return roots;
  }

  /** Little-endian doubles as a {@code double[]} (a GBT's tree weights, a logistic regression's coefficients). */
  public static double[] doubles(byte[] packed) {
    double[] out = new double[packed.length / 8];
    little(packed).asDoubleBuffer().get(out);
    return out;
  }

  private static ByteBuffer little(byte[] packed) {
    return ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
  }
}
