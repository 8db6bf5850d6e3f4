// What `chainrule train`, `eval` and `predict` do, through the library: read a CSV, fit a model,
// evaluate it, save it, load it back and predict. Usage: csv_pipeline DATA.csv TARGET MODEL_OUT
// Exits 0 when the reloaded model predicts exactly what the trained one does.
#include <chainrule/fit.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  using namespace chainrule;
  if (argc != 4) return 2;
  const Table table = read_csv(argv[1]);

  FitOptions options;
  options.data.target = argv[2];
  options.layers = {16};
  options.train.epochs = 100;
  options.seed = 7;
  const FitResult fitted = fit(table, options);

  const Evaluation e = evaluate(fitted.model, table);
  std::printf("trained in %.3f s: loss %.4f, accuracy %.4f\n", fitted.seconds, e.loss, e.accuracy);
  save_model(fitted.model, argv[3]);

  const Model loaded = load_model(argv[3]);
  const Predictions before = predict(fitted.model, table), after = predict(loaded, table);
  for (std::size_t n = 0; n < table.rows(); ++n)
    std::printf("row %zu: %s (p = %.4f)\n", n, loaded.prep.classes[after.label[n]].c_str(),
                after.probabilities(Eigen::Index(n), Eigen::Index(after.label[n])));
  return before.probabilities == after.probabilities ? 0 : 1;
}
