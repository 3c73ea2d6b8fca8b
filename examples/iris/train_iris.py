# Train a support vector classifier on scikit-learn's iris data set.
#
# This is the training script of the seed walk-through ("Train scikit-learn
# models at scale"), written against azureml.core.run.Run as it would be for
# a cloud workspace. runyard puts its compatibility module first on every
# run's PYTHONPATH, so the script runs unmodified: 'Kernel type', 'Penalty'
# and 'Accuracy' land in the run's history (`runyard metrics RUN`). Run
# outside runyard, Run.get_context() returns an offline run that prints them.

import argparse
import os

import joblib
from azureml.core.run import Run
from sklearn import datasets
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

run = Run.get_context()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--kernel', type=str, default='linear',
                        help='Kernel type to be used in the algorithm')
    parser.add_argument('--penalty', type=float, default=1.0,
                        help='Penalty parameter of the error term')
    args = parser.parse_args()
    run.log('Kernel type', str(args.kernel))
    run.log('Penalty', float(args.penalty))

    # loading the iris dataset
    iris = datasets.load_iris()

    # X -> features, y -> label
    X = iris.data
    y = iris.target

    # dividing X, y into train and test data
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

    # training a SVM classifier
    svm_model = SVC(kernel=args.kernel, C=args.penalty).fit(X_train, y_train)
    svm_predictions = svm_model.predict(X_test)

    # model accuracy for X_test
    accuracy = svm_model.score(X_test, y_test)
    print('Accuracy of SVM classifier on test set: {:.2f}'.format(accuracy))
    run.log('Accuracy', float(accuracy))

    # creating a confusion matrix
    cm = confusion_matrix(y_test, svm_predictions)
    print(cm)

    # files saved in the "outputs" folder are stored with the run
    os.makedirs('outputs', exist_ok=True)
    joblib.dump(svm_model, 'outputs/model.joblib')


if __name__ == '__main__':
    main()
